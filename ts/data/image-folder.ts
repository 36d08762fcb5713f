/**
 * Users' own images: a folder of PNG and JPEG files as plain typed arrays, like torchvision's
 * `ImageFolder` with `Resize(size)` + `CenterCrop(size)`.
 *
 *     const faces = await ImageFolder({ root: 'faces/', size: 64 });          // or datasets.ImageFolder()
 *     faces.images;   // uint8, N*C*H*W (image, channel, row, column), 0..255
 *
 * Layout: image files directly in `root` (every label 0, `classes: []`), or one subfolder per class
 * (class names are the sorted subfolder names, label = index; each subfolder is read recursively).
 * Files are .png, .jpg, .jpeg (any case); hidden files and folders (a leading '.') and other files are
 * ignored. Order: class by class, files within a class sorted by path (code units, not locale, so the
 * order is the same everywhere); `limit` keeps the first files of that order.
 *
 * Decoding (sharp, i.e. libvips): every image is scaled so that its shorter side is `size` and
 * centre-cropped to size x size (sharp's default lanczos3 kernel, so values differ slightly from
 * torchvision's bilinear). Alpha is flattened onto black (transparent = 0, MNIST's background) before
 * the conversion. Grayscale output uses libvips' conversion (luminance of linear-light sRGB: pure red
 * gives 127, where PIL's convert('L') gives 76); a grayscale source in an RGB dataset has its gray
 * value copied to all three channels. EXIF orientation is not applied (torchvision's loader does not
 * either). 16-bit PNGs are scaled to 8 bits.
 *
 * A file that cannot be read or decoded is skipped and listed in `skipped` with its reason; the caller
 * decides whether to warn (`imageFolderWarnings` words it). Only when no file at all decodes is that an error.
 *
 * Hostile folders: only regular files are read (a FIFO, device or socket named like an image is skipped
 * unopened: its type is checked with stat first, and the file is opened non-blocking and checked again
 * with fstat, so nothing can block the load); at most `maxFileBytes` (64 MiB) are read from one file,
 * by its fstat size. Symbolic links are followed without loops or duplicates: each folder and each file
 * (by device and inode) is read once, under the first class in sorted order; the others are listed in
 * `duplicates`. Names are kept as they are; messages show them through util/printable.
 */
import { constants as bufferConstants } from 'node:buffer';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readOptions } from '../util/options';
import { printable } from '../util/printable';
import { DataError, describeError } from './errors';
import { type ImageDataset } from './mnist';

export interface ImageFolderOptions {
  /** A folder of PNG and JPEG files, optionally one subfolder per class. */
  root: string;
  /** Square side the images are resized to (an integer >= 1; the GAN presets use 28, 32 or 64). */
  size: number;
  /** 1 (grayscale), 3 (RGB) or 'auto' (default): 1 when every image is grayscale, else 3. */
  channels?: 1 | 3 | 'auto';
  /** Read at most this many files (the first ones, after sorting). */
  limit?: number;
  /** Bytes read at most from one file (default 64 MiB); a larger file is skipped. */
  maxFileBytes?: number;
}

/** Why a file was left out: unreadable, not a regular file (FIFO, device, socket), over maxFileBytes, or not an image. */
export type SkipKind = 'unreadable' | 'not-a-file' | 'too-large' | 'undecodable';

/** A file left out, and why (e.g. "cannot decode: Input buffer contains unsupported image format"). */
export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
  readonly kind: SkipKind;
}

/** A file or folder reached a second time (through a symbolic or hard link): read once, as `first`. */
export interface DuplicatePath {
  readonly path: string;
  readonly first: string;
}

export interface ImageFolderDataset extends ImageDataset {
  readonly name: 'folder';
  /** A folder has no train/test split: every image found. */
  readonly split: 'all';
  readonly channels: 1 | 3;
  readonly sourceKind: 'folder';
  /** `images`: the file of each image, in order (absolute paths); labels come from subfolder names. */
  readonly files: { readonly images: readonly string[]; readonly labels: null };
  /** Files that could not be read or decoded, in file order. */
  readonly skipped: readonly SkippedFile[];
  /** Files and folders reached again through links, not read again (in the order found). */
  readonly duplicates: readonly DuplicatePath[];
}

/** Extensions recognised (compared lower-cased). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];
/** Labels are uint8. */
const MAX_CLASSES = 256;
/** sharp refuses output sides above 0x3fff. */
const MAX_SIZE = 16383;
/** The default bound on the bytes read from one file: far above any image the presets train on. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Files stat'ed at once while scanning. */
const STAT_CONCURRENCY = 32;
/** Files decoded at once: libuv's default thread pool (4) runs sharp's work, so more would only queue (and hold more files in memory). */
const CONCURRENCY = 4;

const MAX_LENGTH = bufferConstants.MAX_LENGTH;

const EXT_LIST = IMAGE_EXTENSIONS.join(', ');

/** Loads every PNG and JPEG under `opts.root`, resized to `size` x `size`; see the top of this file. */
export async function ImageFolder(opts: ImageFolderOptions): Promise<ImageFolderDataset> {
  const { size, channels, limit, maxFileBytes } = checkOptions(opts);
  const root = path.resolve(opts.root);
  const { classes, entries, duplicates } = await scanRoot(root, maxFileBytes);
  const chosen = limit === undefined ? entries : entries.slice(0, limit);
  checkFits(chosen.length, channels === 'auto' ? 1 : channels, size); // fail before decoding when even 1 channel is too much
  const sharp = await loadSharp();

  const results = await mapPool(chosen, CONCURRENCY, async (e): Promise<Decoded> => e.skip ?? decodeFile(sharp, e.file, size, channels, maxFileBytes));
  const skipped: SkippedFile[] = [];
  let n = 0;
  let colour = false;
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    if ('reason' in r) skipped.push({ file: chosen[i]!.file, reason: r.reason, kind: r.kind });
    else {
      n++;
      colour ||= r.channels === 3;
    }
  }
  if (n === 0) {
    const shown = skipped.slice(0, 3).map((s) => `${printable(path.relative(root, s.file))}: ${s.reason}`);
    const more = skipped.length > 3 ? `; and ${skipped.length - 3} more` : '';
    throw new DataError('NO_READABLE_IMAGES', `none of the ${skipped.length} image files under ${printable(root)} could be read: ${shown.join('; ')}${more}`, {
      file: root,
    });
  }

  const c: 1 | 3 = channels === 'auto' ? (colour ? 3 : 1) : channels;
  checkFits(n, c, size);
  const plane = size * size;
  const images = new Uint8Array(n * c * plane);
  const labels = new Uint8Array(n);
  const files: string[] = [];
  let k = 0;
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!;
    if ('reason' in r) continue;
    writeChannelFirst(images.subarray(k * c * plane, (k + 1) * c * plane), r.pixels, r.channels, c, plane);
    labels[k] = chosen[i]!.label;
    files.push(chosen[i]!.file);
    results[i] = DONE; // let the decoded copy go before the next one is written
    k++;
  }
  return {
    name: 'folder',
    split: 'all',
    images,
    labels,
    length: n,
    channels: c,
    height: size,
    width: size,
    classes,
    source: root,
    sourceKind: 'folder',
    files: { images: files, labels: null },
    skipped,
    duplicates,
  };
}

const mib = (bytes: number) => (bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : `${bytes} bytes`);

/**
 * What a caller should warn about after a load, one line per kind, each counting its files and naming the
 * first (names escaped for a terminal): files that could not be read or decoded, entries that are not
 * regular files, files over maxFileBytes, and files or folders reached again through links.
 */
export function imageFolderWarnings(ds: Pick<ImageFolderDataset, 'source' | 'length' | 'skipped' | 'duplicates'>): string[] {
  const total = ds.length + ds.skipped.length;
  const root = printable(ds.source);
  const of = (kinds: SkipKind[]) => ds.skipped.filter((s) => kinds.includes(s.kind));
  const first = (list: readonly SkippedFile[]) => `first: ${printable(list[0]!.file)}: ${list[0]!.reason}`;
  const lines: string[] = [];
  const unreadable = of(['unreadable', 'undecodable']);
  if (unreadable.length) lines.push(`${unreadable.length} of ${total} files in ${root} could not be read and were skipped (${first(unreadable)})`);
  const special = of(['not-a-file']);
  if (special.length)
    lines.push(`${special.length} of ${total} files in ${root} are not regular files (FIFOs, devices or sockets) and were skipped unread (${first(special)})`);
  const large = of(['too-large']);
  if (large.length) lines.push(`${large.length} of ${total} files in ${root} are larger than the bound on one file and were skipped (${first(large)})`);
  const dup = ds.duplicates;
  if (dup.length) {
    lines.push(
      `${dup.length} ${dup.length === 1 ? 'file or folder' : 'files or folders'} in ${root} ${dup.length === 1 ? 'was' : 'were'} reached again through links ` +
        `and not read again: each file is read once, under the first class in sorted order (first: ${printable(dup[0]!.path)} is ${printable(dup[0]!.first)})`,
    );
  }
  return lines;
}

function checkOptions(opts: ImageFolderOptions): { size: number; channels: 1 | 3 | 'auto'; limit?: number; maxFileBytes: number } {
  const o = readOptions('ImageFolder', opts, ['root', 'size', 'channels', 'limit', 'maxFileBytes'], { form: 'an options object { root, size, ... }' });
  o.string('root', 'a folder path (a non-empty string)');
  return {
    size: o.integer('size', { min: 1, max: MAX_SIZE }),
    channels: o.oneOfOr('channels', [1, 3, 'auto'] as const, 'auto'),
    limit: o.integerOr('limit', undefined, { min: 1 }),
    maxFileBytes: o.integerOr('maxFileBytes', DEFAULT_MAX_FILE_BYTES, { min: 1, max: MAX_LENGTH }),
  };
}

/** The largest Uint8Array Node allows (buffer.constants.MAX_LENGTH, 4 GiB on 64-bit). */
function checkFits(n: number, c: number, size: number): void {
  const bytes = n * c * size * size;
  if (bytes > MAX_LENGTH) {
    throw new RangeError(
      `ImageFolder: ${n} images of ${c} x ${size} x ${size} need ${bytes} bytes, more than the ${MAX_LENGTH} one Uint8Array can hold: lower size or set limit`,
    );
  }
}

type Skip = { reason: string; kind: SkipKind };

interface Entry {
  file: string;
  label: number;
  /** Known unreadable from the scan (not a regular file, too large, no stat): never opened. */
  skip?: Skip;
}

/** What the scan has met so far (device:inode of folders and files, with the path first met), and the repeats. */
interface Seen {
  dirs: Map<string, string>;
  files: Map<string, string>;
  duplicates: DuplicatePath[];
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const isImageName = (name: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
const idOf = (st: fs.Stats): string => `${st.dev}:${st.ino}`;

/** What a non-regular file is, in words. */
function typeName(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a regular file';
}

const notAFile = (st: fs.Stats): Skip => ({ reason: `not a regular file: ${typeName(st)}`, kind: 'not-a-file' });
const tooLarge = (bytes: number, max: number): Skip => ({
  reason: `${bytes} bytes, more than the ${mib(max)} read from one file (maxFileBytes)`,
  kind: 'too-large',
});

/** The class names and the files to read, in order; throws for a bad root or layout. */
async function scanRoot(root: string, maxBytes: number): Promise<{ classes: string[]; entries: Entry[]; duplicates: DuplicatePath[] }> {
  let st: fs.Stats;
  const shownRoot = printable(root);
  try {
    st = await fs.promises.stat(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError('NOT_FOUND', `image folder ${shownRoot} does not exist: give a folder of ${EXT_LIST} files, or one subfolder of them per class`, {
        file: root,
      });
    }
    throw new DataError('IO', `image folder ${shownRoot}: cannot read (${describeError(err)})`, { file: root, cause: err });
  }
  if (!st.isDirectory()) {
    throw new DataError('NOT_FOUND', `image folder ${shownRoot} is not a folder: give a folder of ${EXT_LIST} files, or one subfolder of them per class`, {
      file: root,
    });
  }
  // the root counts as met: a link back to it from a class folder would read every class again
  const seen: Seen = { dirs: new Map([[idOf(st), root]]), files: new Map(), duplicates: [] };
  const top = await listDir(root);
  const images = top.files.filter(isImageName).sort(byCodeUnits);
  const dirs = top.dirs.sort(byCodeUnits);
  if (images.length > 0 && dirs.length > 0) {
    throw new DataError(
      'BAD_LAYOUT',
      `image folder ${shownRoot} holds both image files (${sample(images)}) and subfolders (${sample(dirs)}): ` +
        'put every image in a class subfolder, or have no subfolders (unlabelled images)',
      { file: root },
    );
  }
  if (dirs.length === 0) {
    if (images.length === 0) {
      const others = top.files.length > 0 ? `; ignored ${top.files.length} other files (${sample(top.files.sort(byCodeUnits))})` : '';
      throw new DataError(
        'NO_IMAGES',
        `no images in ${shownRoot}: looked for ${EXT_LIST} files (any case, hidden files ignored) and class subfolders${others}`,
        {
          file: root,
        },
      );
    }
    const entries = await classEntries(
      images.map((f) => path.join(root, f)),
      0,
      seen,
      maxBytes,
    );
    return { classes: [], entries, duplicates: seen.duplicates };
  }
  if (dirs.length > MAX_CLASSES) {
    throw new DataError(
      'TOO_MANY_CLASSES',
      `image folder ${shownRoot} has ${dirs.length} class subfolders; at most ${MAX_CLASSES} are supported (labels are uint8)`,
      { file: root },
    );
  }
  const entries: Entry[] = [];
  const empty: string[] = [];
  for (let label = 0; label < dirs.length; label++) {
    const dir = path.join(root, dirs[label]!);
    const files = (await walkImages(dir, seen)).sort(byCodeUnits);
    const found = await classEntries(files, label, seen, maxBytes);
    if (found.length === 0) {
      // a class folder that is another one reached through a link: say which
      const again = seen.duplicates.find((d) => d.path === dir);
      empty.push(again ? `${dirs[label]!} (the folder ${path.relative(root, again.first) || '.'} again, through a symbolic link)` : dirs[label]!);
    }
    entries.push(...found);
  }
  if (empty.length > 0) {
    throw new DataError(
      'NO_IMAGES',
      `class subfolder${empty.length > 1 ? 's' : ''} ${sample(empty, 10)} of ${shownRoot} hold${empty.length > 1 ? '' : 's'} no images ` +
        `(looked for ${EXT_LIST} files, any case, hidden files ignored; a file or folder met before is read once, under its first class): add images or remove the folder`,
      { file: root },
    );
  }
  return { classes: dirs, entries, duplicates: seen.duplicates };
}

/**
 * The entries of one class from its image paths (sorted): each stat'ed (links followed) without being
 * opened; a file met before (same device and inode, under this class or an earlier one) becomes a
 * duplicate; one that is not a regular file, or larger than `maxBytes`, is an entry skipped unread.
 */
async function classEntries(files: string[], label: number, seen: Seen, maxBytes: number): Promise<Entry[]> {
  const stats = await mapPool(files, STAT_CONCURRENCY, (f) => fs.promises.stat(f).catch((err: unknown) => err as Error));
  const out: Entry[] = [];
  files.forEach((file, i) => {
    const st = stats[i]!;
    if (st instanceof Error) {
      // a dangling link or a file that went away: its read error, as before
      out.push({ file, label, skip: { reason: `cannot read file (${describeError(st)})`, kind: 'unreadable' } });
      return;
    }
    if (!st.isFile()) {
      out.push({ file, label, skip: notAFile(st) });
      return;
    }
    const first = seen.files.get(idOf(st));
    if (first !== undefined) {
      seen.duplicates.push({ path: file, first });
      return;
    }
    seen.files.set(idOf(st), file);
    out.push(st.size > maxBytes ? { file, label, skip: tooLarge(st.size, maxBytes) } : { file, label });
  });
  return out;
}

/** Up to `max` names (escaped for a terminal), then how many more. */
function sample(names: readonly string[], max = 3): string {
  const more = names.length > max ? `, and ${names.length - max} more` : '';
  return names.slice(0, max).map(printable).join(', ') + more;
}

/** Visible files and folders of `dir` (names); symbolic links count as what they point to. */
async function listDir(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  let dirents: fs.Dirent[];
  try {
    dirents = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new DataError('IO', `image folder ${printable(dir)}: cannot list (${describeError(err)})`, { file: dir, cause: err });
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const d of dirents) {
    if (d.name.startsWith('.')) continue;
    let isDir = d.isDirectory();
    if (d.isSymbolicLink()) {
      try {
        isDir = (await fs.promises.stat(path.join(dir, d.name))).isDirectory();
      } catch {
        isDir = false; // a broken link (or a link loop) to an image is then skipped with its read error
      }
    }
    if (isDir) dirs.push(d.name);
    else files.push(d.name);
  }
  return { files, dirs };
}

/**
 * Image files under `dir`, recursively (absolute paths), subfolders in sorted order. A folder met before
 * (device and inode in `seen`, this class's or an earlier one's) is not entered again: no link loop, and
 * no class reads another's images.
 */
async function walkImages(dir: string, seen: Seen): Promise<string[]> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch (err) {
    throw new DataError('IO', `image folder ${printable(dir)}: cannot read (${describeError(err)})`, { file: dir, cause: err });
  }
  const first = seen.dirs.get(idOf(st));
  if (first !== undefined) {
    seen.duplicates.push({ path: dir, first });
    return [];
  }
  seen.dirs.set(idOf(st), dir);
  const { files, dirs } = await listDir(dir);
  const out = files.filter(isImageName).map((f) => path.join(dir, f));
  for (const d of dirs.sort(byCodeUnits)) out.push(...(await walkImages(path.join(dir, d), seen)));
  return out;
}

type Sharp = typeof import('sharp').default;
let sharpLoaded: Promise<Sharp> | undefined;

/** sharp is loaded on first use, so that MNIST users never load libvips and a broken install only fails here. */
function loadSharp(): Promise<Sharp> {
  sharpLoaded ??= import('sharp').then(
    (m) => m.default,
    (err: unknown) => {
      sharpLoaded = undefined;
      throw new DataError(
        'DECODER_UNAVAILABLE',
        `ImageFolder needs the image decoder sharp, which could not be loaded (${describeError(err)}); reinstall it with \`npm install sharp\``,
        { cause: err },
      );
    },
  );
  return sharpLoaded;
}

type Decoded = { pixels: Uint8Array; channels: 1 | 3 } | Skip;
const DONE: Decoded = { reason: 'written', kind: 'unreadable' };

// non-blocking: a FIFO put in an image's place after the scan opens at once (and is refused by fstat)
// instead of waiting for a writer; no controlling terminal from a tty device
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** The bytes of a regular file of at most `max` bytes (by its fstat size, read up to that size), or why not. */
async function readBounded(file: string, max: number): Promise<Buffer | Skip> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    return { reason: `cannot read file (${describeError(err)})`, kind: 'unreadable' };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return notAFile(st);
    if (st.size > max) return tooLarge(st.size, max);
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break; // shrank since fstat: what is there
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } catch (err) {
    return { reason: `cannot read file (${describeError(err)})`, kind: 'unreadable' };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** One file as size*size*channels interleaved uint8 (channels: as asked, or the file's own for 'auto'); never throws. */
async function decodeFile(sharp: Sharp, file: string, size: number, want: 1 | 3 | 'auto', maxBytes: number): Promise<Decoded> {
  const bytes = await readBounded(file, maxBytes);
  if (!Buffer.isBuffer(bytes)) return bytes;
  try {
    const img = sharp(bytes);
    let c: 1 | 3;
    if (want === 'auto') {
      // grayscale by the file's colour type (gray or gray+alpha), not by its pixel values
      const meta = await img.metadata();
      c = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1 ? 1 : 3;
    } else c = want;
    img.flatten({ background: '#000000' }).resize(size, size, { fit: 'cover', position: 'centre' });
    if (c === 1) img.grayscale();
    else img.toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== c || info.width !== size || info.height !== size || data.length !== size * size * c) {
      return {
        reason: `decoded to ${info.width}x${info.height} with ${info.channels} channels (${data.length} bytes), expected ${size}x${size} with ${c}`,
        kind: 'undecodable',
      };
    }
    return { pixels: data, channels: c };
  } catch (err) {
    // libvips reports one problem per line, often repeated
    const lines = [
      ...new Set(
        describeError(err)
          .split('\n')
          // a line may end in ':' when libvips' detail was taken by a concurrent decode
          .map((l) => l.trim().replace(/:$/, '')),
      ),
    ].filter((l) => l !== '');
    return { reason: `cannot decode: ${lines.join('; ')}`, kind: 'undecodable' };
  }
}

/** Writes one image into `out` (c*plane bytes, channel-first) from interleaved `src` with `srcC` channels. */
function writeChannelFirst(out: Uint8Array, src: Uint8Array, srcC: 1 | 3, c: 1 | 3, plane: number): void {
  if (srcC === 1) {
    for (let ch = 0; ch < c; ch++) out.set(src, ch * plane); // gray into RGB: the same value in R, G and B
    return;
  }
  for (let p = 0, q = 0; p < plane; p++, q += 3) {
    out[p] = src[q]!;
    out[plane + p] = src[q + 1]!;
    out[2 * plane + p] = src[q + 2]!;
  }
}

/** `fn` over `items` with at most `limit` calls in flight; results in item order. */
async function mapPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
