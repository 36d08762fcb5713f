// The Fashion-MNIST classifier and the quality metrics of Fashion-MNIST runs (evaluate.test.ts holds MNIST's).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../ts/cli/main';
import { DEBIAN_FASHION_MNIST_DIR } from '../../ts/data/catalog';
import { sha256Hex } from '../../ts/data/download';
import { FashionMNIST, type ImageDataset } from '../../ts/data/mnist';
import * as torch from '../../ts/tensor/torch';
import { batchesOf, evaluate, EvaluationError, QualityEvaluator } from '../../ts/quality/evaluate';
import { CLASSIFIERS, ClassifierError, featuresAndLogits, loadClassifier, readClassifierRecord } from '../../ts/quality/classifier';
import { readMetrics, type QualityRow } from '../../ts/quality/epoch-quality';
import { Trainer } from '../../ts/run/trainer';

const fashionPresent = fs.existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 't10k-images-idx3-ubyte.gz'));
if (!fashionPresent) console.warn(`Fashion-MNIST quality tests skipped: ${DEBIAN_FASHION_MNIST_DIR} missing (apt-get install dataset-fashion-mnist)`);
const describeIfFashion = fashionPresent ? describe : describe.skip;

const FASHION = CLASSIFIERS['fashion-mnist'];
/** How far the first 1,000 test images' accuracy may fall below the whole test set's recorded one (about 2 standard errors at n = 1,000). */
const FIRST_1000_TOLERANCE = 0.02;

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-eval-fashion-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the shipped Fashion-MNIST classifier: files', () => {
  it("sits in models/ beside MNIST's, its SHA-256 that of its record, >= 88% on the test set, retrained by the recorded command", () => {
    expect(FASHION.files.weights).toBe(path.join(path.dirname(CLASSIFIERS.mnist.files.weights), 'fashion-mnist-classifier.safetensors'));
    const rec = readClassifierRecord(FASHION.files.record);
    expect(sha256Hex(fs.readFileSync(FASHION.files.weights))).toBe(rec.sha256);
    expect(rec.sha256).not.toBe(readClassifierRecord().sha256);
    expect(rec.testAccuracy).toBeGreaterThanOrEqual(0.88);
    expect(rec.seed).toBe(1);
    expect(rec.command).toBe(`npm run train:classifier -- --dataset fashion-mnist --seed 1 --epochs ${rec.epochs} --batch 128 --threads 1`);
    // the same architecture as MNIST's: the same parameters
    expect(rec.parameters).toBe(readClassifierRecord().parameters);
  });

  it('a corrupt weights file is refused with both digests', () => {
    const bad = path.join(root, 'bad.safetensors');
    const bytes = Buffer.from(fs.readFileSync(FASHION.files.weights));
    bytes[bytes.length - 5] ^= 0xff;
    fs.writeFileSync(bad, bytes);
    const rec = readClassifierRecord(FASHION.files.record);
    expect(() => loadClassifier('fashion-mnist', { weights: bad })).toThrow(ClassifierError);
    expect(() => loadClassifier('fashion-mnist', { weights: bad })).toThrow(
      `${bad}: SHA-256 ${sha256Hex(bytes)} does not match ${rec.sha256} in ${FASHION.files.record}`,
    );
    expect(() => loadClassifier('folder' as never)).toThrow('dataset: expected one with a shipped classifier ("mnist" or "fashion-mnist"), got "folder"');
  });
});

describeIfFashion('the shipped Fashion-MNIST classifier on the Fashion-MNIST test set', () => {
  let test: ImageDataset;
  let ev: QualityEvaluator;
  beforeAll(async () => {
    test = await FashionMNIST({ train: false });
    ev = await QualityEvaluator.create({ dataset: 'fashion-mnist' });
  }, 120_000);
  afterAll(() => ev?.dispose());

  /** The classifier's right answers among test images [from, from + n). */
  function right(from: number, n: number): number {
    let hits = 0;
    torch.noGrad(() => {
      for (let i = from; i < from + n; i += 1000) {
        torch.scope(() => {
          const m = Math.min(1000, from + n - i);
          const x = torch
            .tensor(test.images.subarray(i * 784, (i + m) * 784), [m, 1, 28, 28])
            .to('float32')
            .div(255)
            .sub(0.5)
            .div(0.5);
          const y = torch.tensor(
            BigInt64Array.from(test.labels.subarray(i, i + m), (v) => BigInt(v)),
            [m],
          );
          hits += featuresAndLogits(ev.model, x).logits.argmax(1).eq(y).sum().item();
        });
      }
    });
    return hits;
  }

  it(`reads the first 1,000 test images right at least as often as its recorded accuracy minus ${FIRST_1000_TOLERANCE}`, () => {
    const rec = readClassifierRecord(FASHION.files.record);
    expect(right(0, 1000) / 1000).toBeGreaterThanOrEqual(rec.testAccuracy - FIRST_1000_TOLERANCE);
  });

  it('reaches its recorded test accuracy exactly', () => {
    expect(right(0, test.length) / test.length).toBe(readClassifierRecord(FASHION.files.record).testAccuracy);
  });

  it('names itself; the test set against itself scores FID 0; real training images near the floor, noise far above it', async () => {
    expect(ev.classifier).toEqual({
      name: 'fashion-mnist-classifier',
      dataset: 'fashion-mnist',
      sha256: readClassifierRecord(FASHION.files.record).sha256,
      testAccuracy: readClassifierRecord(FASHION.files.record).testAccuracy,
    });
    const self = ev.score(batchesOf(test.images, test.length));
    expect(self.fid).toBeLessThan(1e-6);
    // the test set holds 1,000 of each class: the histogram is that within the error rate
    for (const c of self.histogram) expect(Math.abs(c - 1000)).toBeLessThanOrEqual(0.15 * 1000);
    const floor = await ev.floor(2000);
    expect(floor.n).toBe(2000);
    expect(floor.fid).toBeGreaterThan(0);
    expect(floor.coverage).toBeGreaterThan(0.7);
    const noise = torch.scope(() => ev.score([{ images: torch.rand([2000, 784]).mul(2).sub(1) }]));
    expect(noise.fid).toBeGreaterThan(30 * floor.fid);
  });
});

describeIfFashion('a Fashion-MNIST run: quality per epoch, evaluate() and libtorch-gan eval', () => {
  let runDir: string;
  let rows: QualityRow[];
  beforeAll(async () => {
    const t = await Trainer.create(
      {
        preset: 'vanilla',
        epochs: 1,
        seed: 3,
        device: 'cpu',
        data: { dataset: 'fashion-mnist', download: false },
        saveDir: path.join(root, 'runs'),
        verbose: 0,
        evalEvery: 1,
        evalN: 500,
      },
      { limit: 640 },
    );
    await t.train();
    runDir = t.runDir;
    t.dispose();
    rows = readMetrics(runDir);
  }, 300_000);

  it('evaluate() scores it with the Fashion-MNIST classifier, the figures of its per-epoch row', async () => {
    const r = await evaluate(runDir, { n: 500 });
    expect([r.n, r.seed, r.epoch, r.preset, r.conditional, r.labelAccuracy]).toEqual([500, 0, 1, 'vanilla', false, null]);
    expect(r.classifier.name).toBe('fashion-mnist-classifier');
    expect(r.classifier.dataset).toBe('fashion-mnist');
    expect(r.classifier.sha256).toBe(readClassifierRecord(FASHION.files.record).sha256);
    expect(r.histogram.reduce((a, b) => a + b, 0)).toBe(500);
    expect(r.fid).toBeGreaterThan(r.floor.fid);
    expect(rows.map((x) => [x.epoch, x.n])).toEqual([[1, 500]]);
    expect(r.fid).toBeCloseTo(rows[0]!.fid, 6);
    expect(r.floor.fid).toBeCloseTo(rows[0]!.floorFid, 8);
    // the MNIST evaluator is refused for this run rather than giving numbers of the wrong classifier
    const mnistEv = await QualityEvaluator.create();
    try {
      await expect(evaluate(runDir, { n: 500, evaluator: mnistEv })).rejects.toThrow(EvaluationError);
    } finally {
      mnistEv.dispose();
    }
  }, 120_000);

  it('libtorch-gan eval names the classifier in its table and in --json; report.html names it too', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (x: string) => out.push(x) > 0 }, stderr: { write: () => true }, env: {} } as never;
    expect(await main(['eval', runDir, '--n', '500'], io)).toBe(0);
    const text = out.join('');
    expect(text).toContain(`${runDir}: vanilla, epoch 1, n 500, seed 0`);
    expect(text).toMatch(new RegExp(`classifier-FID\\s+${rows[0]!.fid.toFixed(2)}\\s+${rows[0]!.floorFid.toFixed(2)}`));
    expect(text).toMatch(/ {2}classes 0-9: (\d+ ){9}\d+\n/);
    const rec = readClassifierRecord(FASHION.files.record);
    expect(text).toContain(`classifier fashion-mnist-classifier ${rec.sha256.slice(0, 12)} (${(rec.testAccuracy * 100).toFixed(2)}% on Fashion-MNIST test)`);
    out.length = 0;
    expect(await main(['eval', runDir, '--n', '500', '--json'], io)).toBe(0);
    const r = JSON.parse(out.join(''));
    expect(r.classifier).toEqual({ name: 'fashion-mnist-classifier', dataset: 'fashion-mnist', sha256: rec.sha256, testAccuracy: rec.testAccuracy });
    const html = fs.readFileSync(path.join(runDir, 'report.html'), 'utf8');
    expect(html).toContain('<section id="quality">');
    expect(html).toContain("from the package's Fashion-MNIST classifier (fashion-mnist-classifier)");
  }, 120_000);
});
