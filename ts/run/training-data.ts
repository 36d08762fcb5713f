/** The training images of a run: the configured dataset (or one given), its first `limit` images uploaded once to the device. */
import { type DownloadProgress } from '../data/download';
import { FashionMNIST, MNIST, type ImageDataset } from '../data/mnist';
import { IMAGE_SIDE } from '../gan/presets';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type ResolvedConfig } from './config';

const IMAGE_FEATURES = IMAGE_SIDE * IMAGE_SIDE;

export async function loadTrainingData(
  cfg: ResolvedConfig,
  opts: { dataset?: ImageDataset; limit?: number; onDownload?: (p: DownloadProgress) => void },
): Promise<{ dataset: ImageDataset; images: Tensor }> {
  const ds =
    opts.dataset ??
    (await (cfg.data.dataset === 'fashion-mnist' ? FashionMNIST : MNIST)({
      train: true,
      root: cfg.data.root,
      download: cfg.data.download,
      onProgress: opts.onDownload,
    }));
  if (ds.height * ds.width !== IMAGE_FEATURES) {
    throw new Error(`the presets train on ${IMAGE_SIDE}x${IMAGE_SIDE} images; the dataset has ${ds.height}x${ds.width}`);
  }
  const n = Math.min(ds.length, opts.limit ?? ds.length);
  if (n < 1) throw new Error('the dataset is empty');
  const images = torch.tensor(ds.images.subarray(0, n * IMAGE_FEATURES), [n, IMAGE_FEATURES], { dtype: 'uint8', device: cfg.device });
  return { dataset: ds, images };
}
