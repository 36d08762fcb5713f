import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { MNIST, type ImageDataset } from '../../ts/data/mnist';
import * as safetensors from '../../ts/tensor/safetensors';
import * as torch from '../../ts/tensor/torch';
import { batchesOf, evaluate, EvaluationError, QualityEvaluator } from '../../ts/quality/evaluate';
import { CLASSIFIERS, ClassifierError, featuresAndLogits, loadMnistClassifier, readClassifierRecord } from '../../ts/quality/classifier';
import { coverage, featureStats, frechetDistance } from '../../ts/quality/metrics';
import { Trainer } from '../../ts/run/trainer';
import { sha256Hex } from '../../ts/data/download';
import { findPython, runPython } from '../helpers/python';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-eval-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let test: ImageDataset;
let ev: QualityEvaluator;
beforeAll(async () => {
  test = await MNIST({ train: false });
  ev = await QualityEvaluator.create();
}, 120_000);
afterAll(() => ev?.dispose());

/** The test images of one digit, as uint8 MNIST layout. */
function digit(d: number): { images: Uint8Array; n: number } {
  const idx: number[] = [];
  for (let i = 0; i < test.length; i++) if (test.labels[i] === d) idx.push(i);
  const images = new Uint8Array(idx.length * 784);
  idx.forEach((k, j) => {
    images.set(test.images.subarray(k * 784, (k + 1) * 784), j * 784);
  });
  return { images, n: idx.length };
}

describe('the shipped MNIST classifier', () => {
  it('matches the SHA-256 of its record and reads >= 99% of the MNIST test set right', () => {
    const rec = readClassifierRecord();
    expect(sha256Hex(fs.readFileSync(CLASSIFIERS.mnist.files.weights))).toBe(rec.sha256);
    expect(rec.testAccuracy).toBeGreaterThanOrEqual(0.99);
    // counted through the evaluator's own path: the histogram of the test set is its label histogram within the error rate
    const scores = ev.score(batchesOf(test.images, test.length));
    const truth = Array.from({ length: 10 }, (_, d) => test.labels.filter((l) => l === d).length);
    for (const [d, c] of scores.histogram.entries()) expect(Math.abs(c - truth[d]!)).toBeLessThanOrEqual(0.01 * test.length);
  });

  it('reaches its recorded test accuracy exactly', () => {
    const rec = readClassifierRecord();
    let right = 0;
    torch.noGrad(() => {
      for (let i = 0; i < test.length; i += 1000) {
        torch.scope(() => {
          const x = torch
            .tensor(test.images.subarray(i * 784, (i + 1000) * 784), [1000, 1, 28, 28])
            .to('float32')
            .div(255)
            .sub(0.5)
            .div(0.5);
          const y = torch.tensor(
            BigInt64Array.from(test.labels.subarray(i, i + 1000), (v) => BigInt(v)),
            [1000],
          );
          right += featuresAndLogits(ev.model, x).logits.argmax(1).eq(y).sum().item();
        });
      }
    });
    expect(right / test.length).toBe(rec.testAccuracy);
  });

  it('a corrupt weights file is refused with both digests; a record without a sha256 too', () => {
    const bad = path.join(root, 'bad.safetensors');
    const bytes = Buffer.from(fs.readFileSync(CLASSIFIERS.mnist.files.weights));
    bytes[bytes.length - 5] ^= 0xff;
    fs.writeFileSync(bad, bytes);
    const rec = readClassifierRecord();
    expect(() => loadMnistClassifier({ weights: bad })).toThrow(ClassifierError);
    expect(() => loadMnistClassifier({ weights: bad })).toThrow(new RegExp(`SHA-256 ${sha256Hex(bytes)} does not match ${rec.sha256}`));
    const badRec = path.join(root, 'bad.json');
    fs.writeFileSync(badRec, JSON.stringify({ testAccuracy: 1 }));
    expect(() => loadMnistClassifier({ record: badRec })).toThrow(/bad\.json: expected an object with a 64-digit hex sha256/);
  });
});

describe('the metrics are sane', () => {
  it('the test set against itself: FID 0, coverage of its own digit mix', () => {
    const s = ev.score(batchesOf(test.images, test.length));
    expect(s.fid).toBeLessThan(1e-6);
    expect(s.inceptionScore).toBeGreaterThan(9.5);
    expect(s.coverage).toBeGreaterThan(0.85);
  });

  it('real training images score near the floor; uniform noise and a one-digit "generator" far above it with coverage 0', async () => {
    const floor = await ev.floor(2000);
    expect(floor.n).toBe(2000);
    expect(floor.fid).toBeGreaterThan(0);
    expect(floor.fid).toBeLessThan(25);
    expect(floor.inceptionScore).toBeGreaterThan(9.3);
    expect(floor.coverage).toBeGreaterThan(0.8);
    const noise = torch.scope(() => ev.score([{ images: torch.rand([2000, 784]).mul(2).sub(1) }]));
    expect(noise.fid).toBeGreaterThan(30 * floor.fid);
    expect(noise.coverage).toBeLessThan(0.05);
    const three = digit(3);
    const one = ev.score(batchesOf(three.images, three.n));
    expect(one.fid).toBeGreaterThan(30 * floor.fid);
    expect(one.coverage).toBe(0);
    expect(one.inceptionScore).toBeLessThan(1.2);
    expect(one.histogram[3]).toBeGreaterThan(0.99 * three.n);
  });

  it('coverage: 1 when even, the rarest share relative to an even one', () => {
    expect(coverage([5, 5, 5, 5])).toBe(1);
    expect(coverage([2, 6, 4, 4])).toBe(0.5);
    expect(coverage([0, 10])).toBe(0);
  });

  const py = findPython(['numpy', 'scipy']);
  (py ? it : it.skip)('frechetDistance equals the pytorch-fid formula (numpy means and covariances, scipy.linalg.sqrtm) on classifier features', () => {
    const feats = (imgs: Uint8Array, n: number) =>
      torch.noGrad(() => {
        const parts = [];
        for (const bt of batchesOf(imgs, n))
          parts.push(torch.scope(() => featuresAndLogits(ev.model, bt.images.to('float32').div(255).sub(0.5).div(0.5)).features));
        return torch.cat(parts);
      });
    const ones = digit(1);
    const a = feats(ones.images, ones.n);
    const b = feats(test.images.subarray(0, 3000 * 784), 3000);
    const file = path.join(root, 'feats.safetensors');
    safetensors.saveFile({ a, b }, file);
    const ours = frechetDistance(featureStats(a), featureStats(b));
    a.dispose();
    b.dispose();
    const out = runPython(py!, [
      '-c',
      `
import sys, numpy as np, scipy.linalg
from safetensors.numpy import load_file
t = load_file(sys.argv[1])
a, b = t['a'].astype(np.float64), t['b'].astype(np.float64)
m1, m2 = a.mean(0), b.mean(0)
s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
covmean = covmean.real
print(repr(float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))))
`,
      file,
    ]);
    const ref = Number(out.trim());
    expect(ours).toBeGreaterThan(100);
    expect(Math.abs(ours - ref) / ref).toBeLessThan(1e-6);
  });
});

describe('evaluate(runDir) and its bad input', () => {
  let runDir: string;
  beforeAll(async () => {
    const t = await Trainer.create(
      { preset: 'vanilla', epochs: 1, seed: 3, device: 'cpu', saveDir: path.join(root, 'runs'), verbose: 0 },
      { dataset: await MNIST(), limit: 640 },
    );
    await t.train();
    runDir = t.runDir;
  }, 120_000);

  it('reports the figures, the floor at the same n and the classifier; the same seed gives the same numbers', async () => {
    const r = await evaluate(runDir, { n: 1000, evaluator: ev });
    expect([r.n, r.seed, r.epoch, r.preset, r.conditional, r.labelAccuracy]).toEqual([1000, 0, 1, 'vanilla', false, null]);
    expect(r.floor.n).toBe(1000);
    expect(r.fid).toBeGreaterThan(r.floor.fid);
    expect(r.histogram.reduce((a, b) => a + b, 0)).toBe(1000);
    expect(r.classifier).toEqual({ name: 'mnist-classifier', dataset: 'mnist', sha256: readClassifierRecord().sha256, testAccuracy: 0.9931 });
    expect(ev.classifier.name).toBe('mnist-classifier');
    const again = await evaluate(runDir, { n: 1000, evaluator: ev });
    expect(again.fid).toBe(r.fid);
    const other = await evaluate(runDir, { n: 1000, seed: 5, evaluator: ev });
    expect(other.fid).not.toBe(r.fid);
  });

  it('refuses n < 2, n beyond memory, unknown options, a folder without a generator, a folder run, a Fashion-MNIST run with the MNIST evaluator', async () => {
    await expect(evaluate(runDir, { n: 1, evaluator: ev })).rejects.toThrow(/evaluate: n: expected an integer from 2 .* got 1/);
    await expect(evaluate(runDir, { n: 999_999_999, evaluator: ev })).rejects.toThrow(/expected an integer from 2 .* to 1000000, got 999999999/);
    await expect(evaluate(runDir, { m: 3 } as never)).rejects.toThrow(
      'evaluate: unknown option "m": did you mean n? (options: n, seed, device, data, evaluator)',
    );
    await expect(evaluate(path.join(root, 'nowhere'))).rejects.toThrow(/does not exist/);
    const empty = path.join(root, 'no-generator');
    fs.mkdirSync(empty);
    fs.copyFileSync(path.join(runDir, 'config.json'), path.join(empty, 'config.json'));
    await expect(evaluate(empty, { evaluator: ev })).rejects.toThrow(/has no generator.safetensors/);
    const fashion = path.join(root, 'fashion');
    fs.mkdirSync(fashion);
    const cfg = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    cfg.config.data.dataset = 'fashion-mnist';
    fs.writeFileSync(path.join(fashion, 'config.json'), JSON.stringify(cfg));
    await expect(evaluate(fashion, { evaluator: ev })).rejects.toThrow(EvaluationError);
    await expect(evaluate(fashion, { evaluator: ev })).rejects.toThrow(
      "evaluator: it scores with the mnist-classifier; this fashion-mnist run needs the fashion-mnist-classifier (QualityEvaluator.create({ dataset: 'fashion-mnist' }))",
    );
    const folder = path.join(root, 'folder-run');
    fs.mkdirSync(folder);
    cfg.config.data = { dataset: 'folder', root: path.join(root, 'images'), download: false };
    fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(cfg));
    await expect(evaluate(folder)).rejects.toThrow(EvaluationError);
    await expect(evaluate(folder)).rejects.toThrow(
      "the quality metrics need a classifier trained on the run's own classes; the package ships one for MNIST (mnist-classifier) and Fashion-MNIST (fashion-mnist-classifier) runs, none for a folder run (a folder of images has classes of its own)",
    );
    await expect(QualityEvaluator.create({ dataset: 'folder' } as never)).rejects.toThrow(
      'QualityEvaluator.create: dataset: expected "mnist" or "fashion-mnist" (the datasets with a classifier), got "folder"',
    );
  });

  it('a generator of another image size is refused, naming its shape', async () => {
    const big = path.join(root, 'big');
    fs.mkdirSync(big);
    const cfg = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
    cfg.config.preset.image = { channels: 3, size: 32 };
    fs.writeFileSync(path.join(big, 'config.json'), JSON.stringify(cfg));
    await expect(evaluate(big, { evaluator: ev })).rejects.toThrow(/draws images of shape \[3, 32, 32\]; the MNIST classifier reads 1x28x28/);
  });
});

describe('torch.onTrainingThread', () => {
  // A child process, so that no earlier test's parallel work has made a thread team already.
  const SCRIPT = `
const fs = require('node:fs');
const { torch } = require(${JSON.stringify(path.resolve(__dirname, '../../lib/index.js'))});
torch.setNumThreads(2);
const tasks = () => fs.readdirSync('/proc/self/task').length;
const big = () => torch.scope(() => torch.randn([512, 512]).matmul(torch.randn([512, 512])).relu().sum().item());
torch.onTrainingThread(big); // the training thread's team
const before = tasks();
const viaTrain = torch.onTrainingThread(() => torch.noGrad(() => { for (let i = 0; i < 5; i++) big(); return torch.isGradEnabled(); }));
const afterTrain = tasks();
big(); // on the main thread: a second team
console.log(JSON.stringify({ before, afterTrain, afterMain: tasks(), viaTrain }));
`;
  it('runs ops on the one training thread (no new OpenMP team), with the caller grad mode; ops outside make one', () => {
    const r = spawnSync(process.execPath, ['-e', SCRIPT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { before: number; afterTrain: number; afterMain: number; viaTrain: boolean };
    expect(out.afterTrain).toBe(out.before);
    expect(out.afterMain).toBeGreaterThan(out.before);
    expect(out.viaTrain).toBe(false);
  });
  it('refuses an async function, and restores the setting', () => {
    expect(() => torch.onTrainingThread((async () => 1) as never)).toThrow(/must be synchronous/);
    expect(torch.onTrainingThread(() => torch.ones([2]).sum().item())).toBe(2);
  });
});
