import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { DataError, type ImageDataset, ImageFolder, type ImageFolderDataset, datasets, imageFolderWarnings } from '../../ts/data';

type RGBA = [number, number, number, number];

/** A real PNG via pngjs: colorType 0 gray, 2 RGB, 4 gray+alpha, 6 RGBA; `px(x, y)` gives RGBA. */
function writePng(file: string, width: number, height: number, colorType: 0 | 2 | 4 | 6, px: (x: number, y: number) => RGBA): void {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) png.data.set(px(x, y), (y * width + x) * 4);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, PNG.sync.write(png, { colorType, inputColorType: 6 }));
}

/** A real JPEG via sharp, solid colour; gray ones are written as one-channel JPEGs. */
async function writeJpeg(file: string, width: number, height: number, rgb: [number, number, number] | number): Promise<void> {
  const gray = typeof rgb === 'number';
  const c = gray ? 1 : 3;
  const raw = Buffer.alloc(width * height * c);
  for (let i = 0; i < raw.length; i++) raw[i] = gray ? rgb : rgb[i % 3]!;
  let img = sharp(raw, { raw: { width, height, channels: c } });
  if (gray) img = img.toColourspace('b-w');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, await img.jpeg({ quality: 95 }).toBuffer());
}

const solid = (v: RGBA) => (): RGBA => v;
/** Channel `ch` of image `i`: images are N*C*H*W. */
function plane(ds: ImageDataset, i: number, ch: number): number[] {
  const p = ds.height * ds.width;
  return Array.from(ds.images.subarray((i * ds.channels + ch) * p, (i * ds.channels + ch + 1) * p));
}
const errorOf = (p: Promise<unknown>): Promise<DataError> =>
  p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e as DataError,
  );

let tmp: string;
let classes: string; // Mango/, apple/, zebra/ (code-unit order puts 'Mango' first)
let grayOnly: string;
let flat: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-imagefolder-'));

  classes = path.join(tmp, 'classes');
  await writeJpeg(path.join(classes, 'Mango', 'red.jpg'), 64, 48, [255, 0, 0]);
  writePng(path.join(classes, 'Mango', 'rgba.png'), 10, 12, 6, solid([200, 100, 50, 128]));
  writePng(path.join(classes, 'apple', 'gray.png'), 50, 40, 0, solid([77, 77, 77, 255]));
  writePng(path.join(classes, 'apple', 'grad.PNG'), 8, 4, 0, (x) => [x * 30, x * 30, x * 30, 255]);
  const full = fs.readFileSync(path.join(classes, 'Mango', 'red.jpg'));
  fs.writeFileSync(path.join(classes, 'apple', 'truncated.jpg'), full.subarray(0, full.length >> 1));
  fs.mkdirSync(path.join(classes, 'zebra'));
  fs.writeFileSync(path.join(classes, 'zebra', 'broken.png'), 'this is not a PNG');
  fs.writeFileSync(path.join(classes, 'zebra', '.hidden.png'), 'hidden, never read');
  fs.writeFileSync(path.join(classes, 'zebra', 'notes.txt'), 'not an image, ignored');
  await writeJpeg(path.join(classes, 'zebra', 'gray.jpg'), 30, 30, 90);
  writePng(path.join(classes, 'zebra', 'sub', 'nested.png'), 6, 6, 4, solid([160, 160, 160, 0]));
  fs.mkdirSync(path.join(classes, '.git'));

  grayOnly = path.join(tmp, 'gray-only');
  writePng(path.join(grayOnly, 'a', 'g.png'), 20, 20, 0, solid([10, 10, 10, 255]));
  writePng(path.join(grayOnly, 'b', 'ga.png'), 9, 7, 4, solid([200, 200, 200, 255]));
  await writeJpeg(path.join(grayOnly, 'b', 'g.jpeg'), 16, 16, 40);

  flat = path.join(tmp, 'flat');
  writePng(path.join(flat, 'b.png'), 5, 5, 2, solid([0, 255, 0, 255]));
  writePng(path.join(flat, 'a.png'), 7, 3, 0, solid([33, 33, 33, 255]));
  fs.writeFileSync(path.join(flat, 'README.md'), '# my images');
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ImageFolder with class subfolders', () => {
  let ds: ImageFolderDataset;
  beforeAll(async () => {
    ds = await ImageFolder({ root: classes, size: 4 });
  });

  it('classes are the sorted subfolder names; files class by class, sorted by path; labels index the classes', () => {
    expect(ds.classes).toEqual(['Mango', 'apple', 'zebra']);
    const rel = ds.files.images.map((f) => path.relative(classes, f));
    expect(rel).toEqual(['Mango/red.jpg', 'Mango/rgba.png', 'apple/grad.PNG', 'apple/gray.png', 'zebra/gray.jpg', 'zebra/sub/nested.png']);
    expect(Array.from(ds.labels)).toEqual([0, 0, 1, 1, 2, 2]);
    expect(ArrayBuffer.isView(ds.labels) && ds.labels.BYTES_PER_ELEMENT === 1).toBe(true);
  });

  it('the shape and fields fit ImageDataset; channels auto is 3 when any image is colour', () => {
    const asDataset: ImageDataset = ds;
    expect([asDataset.name, asDataset.split, asDataset.sourceKind, asDataset.source]).toEqual(['folder', 'all', 'folder', classes]);
    expect([ds.length, ds.channels, ds.height, ds.width]).toEqual([6, 3, 4, 4]);
    expect(ArrayBuffer.isView(ds.images)).toBe(true);
    expect(ds.images.length).toBe(6 * 3 * 4 * 4);
    expect(ds.files.labels).toBeNull();
  });

  it('corrupt and truncated files are skipped with their reasons; hidden and non-image files are not read', () => {
    expect(ds.skipped.map((s) => path.relative(classes, s.file))).toEqual(['apple/truncated.jpg', 'zebra/broken.png']);
    // libvips' detail line ("VipsJpeg: Premature end of JPEG file") is global state that concurrent decodes can
    // take, so only the header line is certain
    expect(ds.skipped[0]!.reason).toMatch(/^cannot decode: (Input buffer has corrupt header|.*JPEG)/i);
    expect(ds.skipped[0]!.reason).not.toMatch(/:$/);
    expect(ds.skipped[1]!.reason).toBe('cannot decode: Input buffer contains unsupported image format');
  });

  it('pixels: RGB channel order, alpha flattened onto black, gray copied to R, G and B, centre crop', () => {
    const red = [0, 1, 2].map((ch) => plane(ds, 0, ch));
    for (const v of red[0]!) expect(v).toBeGreaterThanOrEqual(250);
    for (const v of [...red[1]!, ...red[2]!]) expect(v).toBeLessThanOrEqual(5);
    // (200, 100, 50) at alpha 128 over black: 200*128/255 = 100.4, 50.2, 25.1
    expect([0, 1, 2].map((ch) => plane(ds, 1, ch))).toEqual([new Array(16).fill(100), new Array(16).fill(50), new Array(16).fill(25)]);
    // 8x4 gradient (column x = 30x): shorter side already 4, so columns 2..5 are kept unchanged
    for (let ch = 0; ch < 3; ch++) expect(plane(ds, 2, ch)).toEqual([60, 90, 120, 150, 60, 90, 120, 150, 60, 90, 120, 150, 60, 90, 120, 150]);
    for (let ch = 0; ch < 3; ch++) expect(plane(ds, 3, ch)).toEqual(new Array(16).fill(77)); // solid gray 50x40 PNG
    for (let ch = 0; ch < 3; ch++) expect(plane(ds, 4, ch)).toEqual(new Array(16).fill(90)); // solid gray JPEG
    for (let ch = 0; ch < 3; ch++) expect(plane(ds, 5, ch)).toEqual(new Array(16).fill(0)); // fully transparent gray+alpha
  });

  it('channels 1 converts colour to gray; limit reads only the first files', async () => {
    const g = await ImageFolder({ root: classes, size: 4, channels: 1, limit: 2 });
    expect([g.length, g.channels, g.images.length]).toEqual([2, 1, 2 * 16]);
    expect(g.classes).toEqual(['Mango', 'apple', 'zebra']);
    expect(g.skipped).toEqual([]);
    // libvips' gray of pure red is its linear-light luminance (about 127; PIL's convert('L') gives 76)
    for (const v of plane(g, 0, 0)) expect(Math.abs(v - 127)).toBeLessThanOrEqual(2);
    // the flattened (100, 50, 25) of rgba.png
    for (const v of plane(g, 1, 0)) expect(Math.abs(v - 64)).toBeLessThanOrEqual(2);
  });

  it('datasets.ImageFolder is the same factory; the size need not be a preset size', async () => {
    expect(datasets.ImageFolder).toBe(ImageFolder);
    const big = await datasets.ImageFolder({ root: classes, size: 37, limit: 4 });
    expect([big.length, big.channels, big.height, big.width, big.images.length]).toEqual([4, 3, 37, 37, 4 * 3 * 37 * 37]);
    expect(new Set(plane(big, 3, 1))).toEqual(new Set([77]));
  });
});

describe('ImageFolder channels and layouts', () => {
  it("'auto' is 1 when every image is grayscale (also gray+alpha PNGs and one-channel JPEGs)", async () => {
    const ds = await ImageFolder({ root: grayOnly, size: 3 });
    expect([ds.length, ds.channels, ds.images.length]).toEqual([3, 1, 3 * 9]);
    expect(ds.files.images.map((f) => path.relative(grayOnly, f))).toEqual(['a/g.png', 'b/g.jpeg', 'b/ga.png']);
    expect(Array.from(ds.labels)).toEqual([0, 1, 1]);
    expect([plane(ds, 0, 0), plane(ds, 1, 0), plane(ds, 2, 0)]).toEqual([new Array(9).fill(10), new Array(9).fill(40), new Array(9).fill(200)]);
  });

  it('channels 3 on gray images repeats the gray value', async () => {
    const ds = await ImageFolder({ root: grayOnly, size: 3, channels: 3 });
    expect(ds.channels).toBe(3);
    for (let ch = 0; ch < 3; ch++) expect(plane(ds, 1, ch)).toEqual(new Array(9).fill(40));
  });

  it('files directly in root: no classes, every label 0, other files ignored', async () => {
    const ds = await ImageFolder({ root: flat, size: 2 });
    expect(ds.classes).toEqual([]);
    expect(ds.files.images.map((f) => path.basename(f))).toEqual(['a.png', 'b.png']);
    expect(Array.from(ds.labels)).toEqual([0, 0]);
    expect(ds.channels).toBe(3);
    expect([plane(ds, 0, 0), plane(ds, 0, 1), plane(ds, 0, 2)]).toEqual([
      [33, 33, 33, 33],
      [33, 33, 33, 33],
      [33, 33, 33, 33],
    ]);
    expect([plane(ds, 1, 0), plane(ds, 1, 1), plane(ds, 1, 2)]).toEqual([
      [0, 0, 0, 0],
      [255, 255, 255, 255],
      [0, 0, 0, 0],
    ]);
  });

  it('256 classes fit uint8 labels', async () => {
    const root = path.join(tmp, 'many');
    for (let i = 0; i < 256; i++) writePng(path.join(root, `c${String(i).padStart(3, '0')}`, 'x.png'), 1, 1, 0, solid([i, i, i, 255]));
    const ds = await ImageFolder({ root, size: 1 });
    expect(ds.classes.length).toBe(256);
    expect(ds.labels[255]).toBe(255);
    expect(ds.images[255]).toBe(255);
    // more than one Uint8Array can hold: refused before decoding
    await expect(ImageFolder({ root, size: 16383 })).rejects.toThrow(
      new RangeError(
        `ImageFolder: 256 images of 1 x 16383 x 16383 need ${256 * 16383 * 16383} bytes, more than the 4294967296 one Uint8Array can hold: lower size or set limit`,
      ),
    );
    fs.mkdirSync(path.join(root, 'c256'));
    const e = await errorOf(ImageFolder({ root, size: 1 }));
    expect([e.code, e.message]).toEqual(['TOO_MANY_CLASSES', `image folder ${root} has 257 class subfolders; at most 256 are supported (labels are uint8)`]);
  });
});

describe('ImageFolder errors', () => {
  it('root missing or not a folder', async () => {
    const missing = path.join(tmp, 'nope');
    const e1 = await errorOf(ImageFolder({ root: missing, size: 28 }));
    expect(e1).toBeInstanceOf(DataError);
    expect([e1.code, e1.file]).toEqual(['NOT_FOUND', missing]);
    expect(e1.message).toBe(`image folder ${missing} does not exist: give a folder of .png, .jpg, .jpeg files, or one subfolder of them per class`);
    const file = path.join(flat, 'a.png');
    const e2 = await errorOf(ImageFolder({ root: file, size: 28 }));
    expect(e2.code).toBe('NOT_FOUND');
    expect(e2.message).toContain(`${file} is not a folder`);
  });

  it('no images: says which extensions were looked for and what was ignored', async () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    const e1 = await errorOf(ImageFolder({ root: empty, size: 28 }));
    expect(e1.code).toBe('NO_IMAGES');
    expect(e1.message).toBe(`no images in ${empty}: looked for .png, .jpg, .jpeg files (any case, hidden files ignored) and class subfolders`);
    fs.writeFileSync(path.join(empty, 'notes.txt'), 'x');
    fs.writeFileSync(path.join(empty, 'photo.gif'), 'x');
    const e2 = await errorOf(ImageFolder({ root: empty, size: 28 }));
    expect(e2.message).toContain('ignored 2 other files (notes.txt, photo.gif)');
    fs.mkdirSync(path.join(empty, 'cats'));
    fs.writeFileSync(path.join(empty, 'cats', 'readme.txt'), 'x');
    const e3 = await errorOf(ImageFolder({ root: empty, size: 28 }));
    expect(e3.code).toBe('NO_IMAGES');
    expect(e3.message).toContain(`class subfolder cats of ${empty} holds no images (looked for .png, .jpg, .jpeg files`);
  });

  it('image files next to class subfolders: names both', async () => {
    const root = path.join(tmp, 'mixed');
    writePng(path.join(root, 'loose.png'), 2, 2, 0, solid([1, 1, 1, 255]));
    writePng(path.join(root, 'dogs', 'd.png'), 2, 2, 0, solid([1, 1, 1, 255]));
    const e = await errorOf(ImageFolder({ root, size: 28 }));
    expect(e.code).toBe('BAD_LAYOUT');
    expect(e.message).toContain('both image files (loose.png) and subfolders (dogs)');
  });

  it('every file unreadable', async () => {
    const root = path.join(tmp, 'all-bad');
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'a.png'), '');
    fs.writeFileSync(path.join(root, 'b.JPG'), 'garbage');
    const e = await errorOf(ImageFolder({ root, size: 28 }));
    expect(e.code).toBe('NO_READABLE_IMAGES');
    expect(e.message).toBe(
      `none of the 2 image files under ${root} could be read: a.png: cannot decode: Input Buffer is empty; ` +
        'b.JPG: cannot decode: Input buffer contains unsupported image format',
    );
  });

  it('sharp that cannot be loaded: DECODER_UNAVAILABLE, after the folder was checked', async () => {
    jest.doMock('sharp', () => {
      throw new Error('libvips-cpp.so: cannot open shared object file');
    });
    try {
      let fresh: typeof ImageFolder = ImageFolder;
      jest.isolateModules(() => {
        fresh = (require('../../ts/data/image-folder') as typeof import('../../ts/data/image-folder')).ImageFolder;
      });
      expect((await errorOf(fresh({ root: path.join(tmp, 'nope'), size: 28 }))).code).toBe('NOT_FOUND');
      const e = await errorOf(fresh({ root: flat, size: 28 }));
      expect(e.code).toBe('DECODER_UNAVAILABLE');
      expect(e.message).toContain('libvips-cpp.so: cannot open shared object file');
      expect(e.message).toContain('npm install sharp');
    } finally {
      jest.dontMock('sharp');
    }
  });

  it('bad options: RangeError or TypeError naming the value', async () => {
    for (const size of [0, -3, 2.5, Number.NaN, 20000]) {
      await expect(ImageFolder({ root: flat, size })).rejects.toThrow(new RangeError(`ImageFolder: size: expected an integer from 1 to 16383, got ${size}`));
    }
    await expect(ImageFolder({ root: flat, size: '28' as unknown as number })).rejects.toThrow(TypeError);
    await expect(ImageFolder({ root: flat, size: '28' as unknown as number })).rejects.toThrow('got "28"');
    await expect(ImageFolder({ root: flat, size: 28, channels: 2 as 1 })).rejects.toThrow(
      new RangeError("ImageFolder: channels: expected 1, 3 or 'auto', got 2"),
    );
    await expect(ImageFolder({ root: flat, size: 28, channels: 'rgb' as 'auto' })).rejects.toThrow(TypeError);
    await expect(ImageFolder({ root: flat, size: 28, limit: 0 })).rejects.toThrow(RangeError);
    await expect(ImageFolder({ root: 42 as unknown as string, size: 28 })).rejects.toThrow(TypeError);
  });
});

/** `p`, or a rejection after `ms`: a load that blocks (a FIFO read, /dev/zero) fails the test instead of hanging it. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('ImageFolder on hostile folders', () => {
  let hostile: string;
  beforeAll(() => {
    hostile = path.join(tmp, 'hostile');
  });

  it('a FIFO named like an image is skipped unopened, counted in the warning; the load does not block', async () => {
    const root = path.join(hostile, 'fifo');
    writePng(path.join(root, 'a', 'ok.png'), 2, 2, 0, solid([50, 50, 50, 255]));
    const fifo = path.join(root, 'a', 'pipe.png');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    try {
      const ds = await within(10_000, ImageFolder({ root, size: 2 }), 'ImageFolder over a FIFO');
      expect(ds.files.images).toEqual([path.join(root, 'a', 'ok.png')]);
      expect(ds.skipped).toEqual([{ file: fifo, reason: 'not a regular file: a FIFO (named pipe)', kind: 'not-a-file' }]);
      expect(imageFolderWarnings(ds)).toEqual([
        `1 of 2 files in ${root} are not regular files (FIFOs, devices or sockets) and were skipped unread (first: ${fifo}: not a regular file: a FIFO (named pipe))`,
      ]);
    } finally {
      // a reader blocked on the FIFO (before the fix) gets its end of file: the worker thread is freed
      try {
        fs.closeSync(fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK));
      } catch {
        // no reader: nothing to free
      }
    }
  }, 20_000);

  it('a link to /dev/zero is skipped unread; a regular file over maxFileBytes is skipped by its size, never read whole', async () => {
    const root = path.join(hostile, 'zero');
    writePng(path.join(root, 'ok.png'), 2, 2, 0, solid([50, 50, 50, 255]));
    fs.symlinkSync('/dev/zero', path.join(root, 'zero.png'));
    const ds = await within(10_000, ImageFolder({ root, size: 2 }), 'ImageFolder over a link to /dev/zero');
    expect(ds.length).toBe(1);
    expect(ds.skipped).toEqual([{ file: path.join(root, 'zero.png'), reason: 'not a regular file: a character device', kind: 'not-a-file' }]);

    const big = path.join(root, 'big.png');
    fs.writeFileSync(big, Buffer.concat([fs.readFileSync(path.join(root, 'ok.png')), Buffer.alloc(3000)]));
    const bound = await ImageFolder({ root, size: 2, maxFileBytes: 2048 });
    const size = fs.statSync(big).size;
    expect(bound.skipped.map((s) => [path.basename(s.file), s.kind, s.reason])).toEqual([
      ['big.png', 'too-large', `${size} bytes, more than the 2048 bytes read from one file (maxFileBytes)`],
      ['zero.png', 'not-a-file', 'not a regular file: a character device'],
    ]);
    expect(imageFolderWarnings(bound)).toEqual([
      `1 of 3 files in ${root} are not regular files (FIFOs, devices or sockets) and were skipped unread (first: ${path.join(root, 'zero.png')}: not a regular file: a character device)`,
      `1 of 3 files in ${root} are larger than the bound on one file and were skipped (first: ${big}: ${size} bytes, more than the 2048 bytes read from one file (maxFileBytes))`,
    ]);
    // the default bound (64 MiB) reads it: the PNG decodes despite the trailing bytes
    expect((await ImageFolder({ root, size: 2 })).length).toBe(2);
    await expect(ImageFolder({ root, size: 2, maxFileBytes: 0 })).rejects.toThrow(
      new RangeError('ImageFolder: maxFileBytes: expected an integer from 1 to 4294967296, got 0'),
    );
  }, 20_000);

  it('symbolic-link loops and a file reached twice: each folder and file read once, under the first class in sorted order', async () => {
    const root = path.join(hostile, 'loops');
    writePng(path.join(root, 'a', '1.png'), 2, 2, 0, solid([10, 10, 10, 255]));
    writePng(path.join(root, 'b', '2.png'), 2, 2, 0, solid([20, 20, 20, 255]));
    fs.symlinkSync('..', path.join(root, 'a', 'up')); // a loop back to the root (every class again)
    fs.symlinkSync(path.join('..', 'a'), path.join(root, 'b', 'loop')); // class a's images under b
    fs.symlinkSync(path.join('..', 'a', '1.png'), path.join(root, 'b', 'same.png')); // one file, two names
    fs.linkSync(path.join(root, 'a', '1.png'), path.join(root, 'b', 'hard.png')); // and a third, a hard link
    const ds = await within(10_000, ImageFolder({ root, size: 2 }), 'ImageFolder over link loops');
    expect(ds.classes).toEqual(['a', 'b']);
    expect(ds.files.images.map((f) => path.relative(root, f))).toEqual(['a/1.png', 'b/2.png']);
    expect(Array.from(ds.labels)).toEqual([0, 1]);
    expect(plane(ds, 0, 0)).toEqual([10, 10, 10, 10]);
    expect(plane(ds, 1, 0)).toEqual([20, 20, 20, 20]);
    expect(ds.skipped).toEqual([]);
    expect(ds.duplicates.map((d) => [path.relative(root, d.path), path.relative(root, d.first)])).toEqual([
      ['a/up', ''],
      ['b/loop', 'a'],
      ['b/hard.png', 'a/1.png'],
      ['b/same.png', 'a/1.png'],
    ]);
    expect(imageFolderWarnings(ds)).toEqual([
      `4 files or folders in ${root} were reached again through links and not read again: each file is read once, under the first class ` +
        `in sorted order (first: ${path.join(root, 'a', 'up')} is ${root})`,
    ]);
    // a class folder that is another class reached through a link holds no images of its own
    fs.symlinkSync('a', path.join(root, 'c'));
    const e = await errorOf(ImageFolder({ root, size: 2 }));
    expect(e.code).toBe('NO_IMAGES');
    expect(e.message).toContain(`class subfolder c (the folder a again, through a symbolic link) of ${root} holds no images`);
  }, 20_000);

  it('a class name with ESC and a newline: kept as the class, escaped in every message', async () => {
    const root = path.join(hostile, 'names');
    const name = 'red\x1b[31m\nfake line';
    writePng(path.join(root, name, 'ok.png'), 2, 2, 0, solid([50, 50, 50, 255]));
    fs.writeFileSync(path.join(root, name, 'bad\x1b[2J.png'), 'not a PNG');
    const ds = await within(10_000, ImageFolder({ root, size: 2 }), 'ImageFolder');
    expect(ds.classes).toEqual([name]);
    const [w] = imageFolderWarnings(ds);
    expect(w).toBe(
      `1 of 2 files in ${root} could not be read and were skipped (first: ${root}/red\\x1b[31m\\nfake line/bad\\x1b[2J.png: ` +
        'cannot decode: Input buffer contains unsupported image format)',
    );
    expect(w).not.toMatch(/[\x00-\x1f]/);
    fs.mkdirSync(path.join(root, 'empty\x1b]0;title\x07'));
    const e = await errorOf(ImageFolder({ root, size: 2 }));
    expect(e.message).toContain('class subfolder empty\\x1b]0;title\\x07 of');
    expect(e.message).not.toMatch(/[\x00-\x1f]/);
  });
});
