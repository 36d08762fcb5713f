/**
 * The training images of a run: the configured dataset (MNIST, Fashion-MNIST or a folder of images;
 * or one given) read into memory, the preset adapted to its channels and size (and to a folder's
 * classes), and its first `limit` images uploaded once to the device as uint8 [N, C, H, W], with
 * their labels as int64 [N] for a conditional preset.
 */
import { type DownloadProgress } from '../data/download';
import { ImageFolder, imageFolderWarnings } from '../data/image-folder';
import { FashionMNIST, MNIST, type ImageDataset } from '../data/mnist';
import { adaptPreset, type Preset } from '../gan/presets';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type ResolvedConfig } from '../config/config';

export interface DataCallbacks {
  onDownload?: (p: DownloadProgress) => void;
  onWarning?: (e: Error) => void;
}

/** The configured dataset, in memory (the data's `root`, `imageSize` and `channels`; a folder's size defaults to the preset's). */
export async function loadDataset(data: ResolvedConfig['data'], preset: Preset, opts: DataCallbacks = {}): Promise<ImageDataset> {
  if (data.dataset === 'folder') {
    const ds = await ImageFolder({ root: data.root!, size: data.imageSize ?? preset.image.size, channels: data.channels ?? 'auto' });
    for (const w of imageFolderWarnings(ds)) opts.onWarning?.(new Error(w));
    return ds;
  }
  const load = data.dataset === 'fashion-mnist' ? FashionMNIST : MNIST;
  return load({ train: true, root: data.root, download: data.download, onProgress: opts.onDownload });
}

/** The preset for these images: their channels and size, and a conditional preset's classes (the same object when nothing changes). */
export function presetForData(preset: Preset, ds: ImageDataset): Preset {
  if (ds.height !== ds.width) throw new Error(`the presets train on square images; the dataset's are ${ds.height}x${ds.width}`);
  const classes = preset.step.conditioning ? ds.classes.length : undefined;
  return adaptPreset(preset, { channels: ds.channels, size: ds.height }, classes);
}

export interface TrainingData {
  /** uint8 [N, C, H, W] on the device. */
  images: Tensor;
  /** int64 [N] on the device: conditional presets only. */
  labels: Tensor | null;
}

/** The first `limit` images of `ds` (a folder's: spread over its classes) on the config's device, with labels for a conditional preset. */
export function uploadTrainingData(ds: ImageDataset, cfg: ResolvedConfig, limit: number | undefined): TrainingData {
  const n = Math.min(ds.length, limit ?? ds.length);
  if (n < 1) throw new Error('the dataset is empty');
  const per = ds.channels * ds.height * ds.width;
  // MNIST's first n images mix the classes; a folder's come class by class, so its limit takes every
  // (length / n)-th image instead and keeps every class
  const pick = ds.name === 'folder' && n < ds.length ? Array.from({ length: n }, (_, i) => Math.floor((i * ds.length) / n)) : null;
  const pixels = pick ? gather(ds.images, pick, per) : ds.images.subarray(0, n * per);
  const ys = pick ? Uint8Array.from(pick, (i) => ds.labels[i]) : ds.labels.subarray(0, n);
  const images = torch.tensor(pixels, [n, ds.channels, ds.height, ds.width], { dtype: 'uint8', device: cfg.device });
  let labels: Tensor | null = null;
  if (cfg.preset.step.conditioning) {
    // int64 made in JS, not by a LibTorch cast: a parallel op on this thread would give the process a
    // second OpenMP team and slow every step of the training thread about 2x (measured)
    const ids = BigInt64Array.from(ys, (v) => BigInt(v));
    labels = torch.tensor(ids, [n], { dtype: 'int64', device: cfg.device });
  }
  return { images, labels };
}

/** The images at `indices` (each `per` bytes), in that order. */
function gather(pixels: Uint8Array, indices: number[], per: number): Uint8Array {
  const out = new Uint8Array(indices.length * per);
  indices.forEach((i, k) => {
    out.set(pixels.subarray(i * per, (i + 1) * per), k * per);
  });
  return out;
}
