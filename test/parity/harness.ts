/**
 * The parity tests' side of test/parity/reference.py's protocol (README.md): models, noise, batches and
 * the comparisons, shared by parity.test.ts (the seed presets) and recipes.test.ts (the recipes' variants).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { datasets } from '../../ts/data/index';
import { type Module } from '../../ts/nn/module';
import { Adam, type Optimizer, SGD } from '../../ts/optim/optimizer';
import * as safetensors from '../../ts/tensor/safetensors';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { type StepResult } from '../../ts/gan/gan-step';
import { buildModels } from '../../ts/gan/build';
import { drawLabels } from '../../ts/gan/condition';
import { noise } from '../../ts/gan/noise';
import { type Preset } from '../../ts/gan/presets';
import { findPython, runPython } from '../helpers/python';

export const STEPS = 5;

/** Where the fixtures are read from: a live reference run's folder (full safetensors dumps) or the committed ones. */
export const fixtures = { dir: path.join(__dirname, 'fixtures'), live: false };
/** The MNIST training images and labels the protocol's batches come from. */
export const data: { images: Uint8Array; labels: Uint8Array } = { images: new Uint8Array(), labels: new Uint8Array() };

export interface TensorSummary {
  shape: number[];
  sum: number;
  absSum: number;
  samples: number[];
}
export interface Fixture {
  preset: string;
  batchSize: number;
  steps: StepResult[];
  sampleIndices: Record<string, number[]>;
  init: Record<string, TensorSummary>;
  final: Record<string, TensorSummary>;
  noise: { zD: { sums: number[] }; zG: { sums: number[] } | null; yD?: number[][] | null; yG?: number[][] | null };
  data: { batchSums: number[]; labelSums?: number[] };
}

// LTG_PARITY=committed forces the committed fixtures even where Python's torch is installed.
const py = process.env.LTG_PARITY === 'committed' ? null : findPython(['torch', 'safetensors', 'numpy']);

/**
 * beforeAll's work: MNIST into `data`, one thread (the reference runs on one: same reduction order, same
 * bits) and, where Python's torch is installed, the fixtures of `all` ({ name: Preset }) generated live by
 * reference.py with full dumps.
 */
export async function prepare(all: Record<string, object>): Promise<void> {
  torch.setNumThreads(1);
  const ds = await datasets.MNIST({ train: true });
  data.images = ds.images;
  data.labels = ds.labels;
  if (py) {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-parity-'));
    runPython(py, [path.join(__dirname, 'reference.py'), 'gan', '--presets', '-', '--out', out, '--full'], { input: JSON.stringify(all) });
    fixtures.dir = out;
    fixtures.live = true;
  }
}

/** afterAll's: the live fixtures removed. */
export function cleanup(): void {
  if (fixtures.live) fs.rmSync(fixtures.dir, { recursive: true, force: true });
}

export function load(name: string): Fixture {
  return JSON.parse(fs.readFileSync(path.join(fixtures.dir, `${name}.json`), 'utf8')) as Fixture;
}

export function build(p: Preset, fused = false): { G: Module; D: Module; optG: Optimizer; optD: Optimizer } {
  torch.manualSeed(1234);
  // G then D, each re-initialized by the preset's scheme right after it is built (dcgan/main.py's order)
  const { generator: G, discriminator: D } = buildModels(p);
  const mk = (m: Module) =>
    p.optimizer.type === 'adam'
      ? new Adam(m.parameters(), {
          lr: p.optimizer.lr,
          betas: p.optimizer.betas,
          eps: p.optimizer.eps,
          weightDecay: p.optimizer.weightDecay,
          amsgrad: p.optimizer.amsgrad,
          fused,
        })
      : new SGD(m.parameters(), {
          lr: p.optimizer.lr,
          momentum: p.optimizer.momentum,
          dampening: p.optimizer.dampening,
          weightDecay: p.optimizer.weightDecay,
          nesterov: p.optimizer.nesterov,
        });
  return { G, D, optG: mk(G), optD: mk(D) };
}

export interface Drawn {
  zD: Tensor[];
  zG: (Tensor | undefined)[];
  yD: (Tensor | undefined)[];
  yG: (Tensor | undefined)[];
}

/** The protocol's draws: per step zD (then yD, conditional), then zG (then yG) when G draws fresh noise. */
export function drawNoise(p: Preset): Drawn {
  const out: Drawn = { zD: [], zG: [], yD: [], yG: [] };
  const classes = p.step.conditioning?.classes ?? 0;
  const labels = () => (classes ? drawLabels(classes, p.batchSize) : undefined);
  for (let i = 0; i < STEPS; i++) {
    out.zD.push(noise(p.step.noise, p.batchSize));
    out.yD.push(labels());
    const fresh = p.step.gNoise === 'fresh';
    out.zG.push(fresh ? noise(p.step.noise, p.batchSize) : undefined);
    out.yG.push(fresh ? labels() : undefined);
  }
  return out;
}

/** The real batches' labels (conditional presets), else none. */
export function realLabels(p: Preset): (Tensor | undefined)[] {
  if (!p.step.conditioning) return Array.from({ length: STEPS }, () => undefined);
  const all = torch.tensor(data.labels.subarray(0, STEPS * p.batchSize), [STEPS * p.batchSize], { dtype: 'uint8' }).long();
  return Array.from({ length: STEPS }, (_, i) => all.narrow(0, i * p.batchSize, p.batchSize));
}

export const convD = (p: Preset) => p.discriminator.type === 'Sequential' && p.discriminator.children[0].type === 'Conv2d';

export function rawBatches(p: Preset): Tensor {
  const shape = convD(p) ? [STEPS * p.batchSize, 1, 28, 28] : [STEPS * p.batchSize, 784];
  return torch.tensor(data.images.subarray(0, STEPS * p.batchSize * 784), shape, { dtype: 'uint8' });
}

export function batches(p: Preset): Tensor[] {
  const x = rawBatches(p).float().div(255);
  const norm = p.normalize === '[-1,1]' ? x.sub(0.5).div(0.5) : x;
  return Array.from({ length: STEPS }, (_, i) => norm.narrow(0, i * p.batchSize, p.batchSize));
}

/** G's and D's state dicts with 'G.' / 'D.' prefixes (and an EMA generator's with 'E.'), as reference.py's state_of. */
export function state(G: Module, D: Module, E?: Module | null): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [prefix, m] of [
    ['G.', G],
    ['D.', D],
    ['E.', E],
  ] as const)
    if (m) for (const [k, v] of Object.entries(m.stateDict())) out[`${prefix}${k}`] = v;
  return out;
}

export function expectLosses(got: StepResult[], want: StepResult[], rtol = 1e-5): void {
  expect(got).toHaveLength(want.length);
  got.forEach((g, i) => {
    for (const k of ['dLoss', 'gLoss', 'dReal', 'dFake'] as const) {
      const rel = Math.abs(g[k] - want[i][k]) / Math.max(Math.abs(want[i][k]), 1e-12);
      if (rel > rtol) throw new Error(`step ${i + 1} ${k}: got ${g[k]}, PyTorch ${want[i][k]} (relative error ${rel.toExponential(2)})`);
    }
  });
}

export function expectWeights(name: string, ours: Record<string, Tensor>, fx: Fixture, which: 'init' | 'final', atol: number): void {
  const want = fx[which];
  expect(Object.keys(ours).sort()).toEqual(Object.keys(want).sort());
  const full = fixtures.live ? safetensors.loadFile(path.join(fixtures.dir, `${name}.${which}.safetensors`)) : null;
  for (const [key, t] of Object.entries(ours)) {
    expect(t.shape).toEqual(want[key].shape);
    const a = Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number);
    let maxErr = 0;
    if (full) {
      const b = Array.from(full[key].toTypedArray() as ArrayLike<number | bigint>, Number);
      for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs(a[i] - b[i]));
    } else {
      fx.sampleIndices[key].forEach((idx, j) => {
        maxErr = Math.max(maxErr, Math.abs(a[idx] - want[key].samples[j]));
      });
      const sum = a.reduce((s, v) => s + v, 0);
      maxErr = Math.max(maxErr, Math.abs(sum - want[key].sum) / Math.max(1, a.length));
    }
    if (maxErr > atol) throw new Error(`${name} ${which} ${key}: max abs difference ${maxErr.toExponential(2)} > ${atol}`);
  }
}
