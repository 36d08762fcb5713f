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
import * as path from 'node:path';
import { readOptions } from '../util/options';
import { printable } from '../util/printable';
import { DONE, type Decoded, decodeFile, loadSharp, writeChannelFirst } from './image-decode';
import { type DuplicatePath, scanRoot, type SkipKind } from './image-scan';
import { mapPool } from '../util/map-pool';

export { type DuplicatePath, IMAGE_EXTENSIONS, type SkipKind } from './image-scan';
import { DataError } from './errors';
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

/** A file left out, and why (e.g. "cannot decode: Input buffer contains unsupported image format"). */
export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
  readonly kind: SkipKind;
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

/** sharp refuses output sides above 0x3fff. */
const MAX_SIZE = 16383;
/** The default bound on the bytes read from one file: far above any image the presets train on. */
export const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Files decoded at once: libuv's default thread pool (4) runs sharp's work, so more would only queue (and hold more files in memory). */
const CONCURRENCY = 4;

const MAX_LENGTH = bufferConstants.MAX_LENGTH;

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
