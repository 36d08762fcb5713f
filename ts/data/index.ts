/**
 * Datasets as plain typed arrays (uint8 pixels and labels). This layer does not touch tensors or
 * devices; a higher layer uploads what it returns.
 */
export { DataError } from './errors';
export type { DataErrorCode, MirrorFailure } from './errors';
export {
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  checkImagesLabels,
  isGzip,
  maybeGunzip,
  parseIdx,
  readIdxFile,
  readImagesLabels,
  readMaybeGzip,
} from './idx';
export type { IdxArray, IdxExpectation, ImagesLabels } from './idx';
export {
  DATASETS,
  DEBIAN_FASHION_MNIST_DIR,
  FASHION_MNIST_MIRRORS,
  FASHION_MNIST_SHA256,
  MNIST_MIRRORS,
  MNIST_SHA256,
  cacheRoot,
  defaultCacheDir,
  packagedDir,
} from './catalog';
export type { DatasetInfo, DatasetName, IdxFileInfo, Split } from './catalog';
export { downloadIdxFile, mirrorUrl, sha256Hex } from './download';
export type { DownloadOptions, DownloadProgress, DownloadResult } from './download';
export { FashionMNIST, MNIST, datasets, loadDataset } from './mnist';
export type { DatasetOptions, ImageDataset, SourceKind } from './mnist';
export { DEFAULT_MAX_FILE_BYTES, IMAGE_EXTENSIONS, ImageFolder, imageFolderWarnings } from './image-folder';
export type { DuplicatePath, ImageFolderDataset, ImageFolderOptions, SkipKind, SkippedFile } from './image-folder';
// The pixel convention lives in util/pixels.ts; data.toFloat32 and data.toUint8 stay where users found them.
export { toFloat32, toUint8, type PixelRange } from '../util/pixels';
