/**
 * Spectral norm inside the fused step's native executor (issue 25), against PyTorch run live through
 * test/parity/reference.py's `gan` command: two preset variants whose specs declare `spectralNorm`
 * (vanilla with every D Linear spectral-normed; a small DCGAN-like conv GAN with spectral norm on each D
 * Conv2d, with options, and on two of G's ConvTranspose2d, under the 'dcgan' init), the protocol's seeds,
 * PyTorch's own noise fed, 5 steps. Losses to 1e-5 relative, every state-dict tensor (u and v included)
 * to 1e-5 absolute: both sides run the same ATen ops in the same order on one thread.
 * Also: why the MLP fast path is not taken, the epoch lock over u and v, and the refusal of any other
 * parametrization.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { datasets } from '../../ts/data/index';
import { buildModels, makeOptimizer } from '../../ts/gan/build';
import { GanStep, type StepResult } from '../../ts/gan/gan-step';
import { type Preset, presets } from '../../ts/gan/presets';
import * as nn from '../../ts/nn/index';
import { type Module } from '../../ts/nn/module';
import { type ModuleSpec } from '../../ts/nn/spec';
import { Adam } from '../../ts/optim/optimizer';
import * as safetensors from '../../ts/tensor/safetensors';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch', 'safetensors', 'numpy']);
const withTorch = py ? describe : describe.skip;
const STEPS = 5;

const seq = (...children: ModuleSpec[]): ModuleSpec => ({ type: 'Sequential', children });
const leaky: ModuleSpec = { type: 'LeakyReLU', negativeSlope: 0.2 };

/** vanilla (seed 004: Dropout, BCE on probabilities, separate D backwards) with every D Linear spectral-normed. */
const snVanilla: Preset = {
  ...structuredClone(presets.vanilla),
  discriminator: seq(
    ...(presets.vanilla.discriminator as { children: ModuleSpec[] }).children.map((c) =>
      c.type === 'Linear' ? { ...c, spectralNorm: true as const } : structuredClone(c),
    ),
  ),
};

/**
 * A small conv GAN: spectral norm on each D Conv2d (one with 2 power iterations and eps 1e-6, the last over
 * dim 1) and on G's first and last ConvTranspose2d (dim 1 by default; 3 power iterations); the 'dcgan' init
 * (it writes the originals); D's real and fake losses summed into one backward, so D's graph on the real
 * batch lives while D's forward on the fake batch updates u and v.
 */
const snConv: Preset = {
  ...structuredClone(presets.dcgan),
  generator: seq(
    { type: 'ConvTranspose2d', inChannels: 16, outChannels: 8, kernelSize: 7, bias: false, spectralNorm: true },
    { type: 'BatchNorm2d', numFeatures: 8 },
    { type: 'ReLU' },
    { type: 'ConvTranspose2d', inChannels: 8, outChannels: 4, kernelSize: 4, stride: 2, padding: 1, bias: false },
    { type: 'BatchNorm2d', numFeatures: 4 },
    { type: 'ReLU' },
    { type: 'ConvTranspose2d', inChannels: 4, outChannels: 1, kernelSize: 4, stride: 2, padding: 1, spectralNorm: { nPowerIterations: 3 } },
    { type: 'Tanh' },
  ),
  discriminator: seq(
    { type: 'Conv2d', inChannels: 1, outChannels: 4, kernelSize: 4, stride: 2, padding: 1, spectralNorm: true },
    leaky,
    { type: 'Conv2d', inChannels: 4, outChannels: 8, kernelSize: 4, stride: 2, padding: 1, spectralNorm: { nPowerIterations: 2, eps: 1e-6 } },
    leaky,
    { type: 'Conv2d', inChannels: 8, outChannels: 1, kernelSize: 7, spectralNorm: { dim: 1 } },
    { type: 'Flatten' },
  ),
  step: {
    loss: 'bceWithLogits',
    realLabel: 1,
    fakeLabel: 0,
    dLossReduction: 'sum',
    detachFakeForD: true,
    gNoise: 'fresh',
    separateDBackward: false,
    noise: { dist: 'normal', dim: 16, shape: [16, 1, 1] },
  },
  batchSize: 16,
  zDim: 16,
};

const VARIANTS = { snVanilla, snConv } as const;
type Name = keyof typeof VARIANTS;
const conv = (name: Name) => name === 'snConv';

interface Fixture {
  steps: StepResult[];
  init: Record<string, { shape: number[] }>;
}

let dir = '';
let mnist: Uint8Array;

beforeAll(async () => {
  if (!py) return;
  torch.setNumThreads(1); // the reference runs on one thread: same reduction order
  mnist = (await datasets.MNIST({ train: true })).images;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-sn-step-'));
  runPython(py, [path.join(__dirname, '..', 'parity', 'reference.py'), 'gan', '--presets', '-', '--out', dir, '--full'], {
    input: JSON.stringify(VARIANTS),
  });
}, 180000);

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const fixture = (name: Name) => JSON.parse(fs.readFileSync(path.join(dir, `${name}.json`), 'utf8')) as Fixture;
const tensors = (name: Name, which: string) => safetensors.loadFile(path.join(dir, `${name}.${which}.safetensors`));

/** The protocol's models (manual_seed(1234), G then D) with single-tensor Adam, PyTorch's default on the CPU. */
function build(p: Preset): { G: Module; D: Module; gan: GanStep } {
  torch.manualSeed(1234);
  const { generator: G, discriminator: D } = buildModels(p);
  const adam = (m: Module) => new Adam(m.parameters(), { lr: p.optimizer.lr, betas: (p.optimizer as { betas: [number, number] }).betas });
  return { G, D, gan: new GanStep(G, D, adam(G), adam(D), p.step) };
}

/** The protocol's real batches: the first STEPS * batchSize MNIST images, normalized to [-1, 1]. */
function batches(name: Name): Tensor[] {
  const p = VARIANTS[name];
  const shape = conv(name) ? [STEPS * p.batchSize, 1, 28, 28] : [STEPS * p.batchSize, 784];
  const x = torch
    .tensor(mnist.subarray(0, STEPS * p.batchSize * 784), shape, { dtype: 'uint8' })
    .float()
    .div(255)
    .sub(0.5)
    .div(0.5);
  return Array.from({ length: STEPS }, (_, i) => x.narrow(0, i * p.batchSize, p.batchSize));
}

function state(G: Module, D: Module): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, v] of Object.entries(G.stateDict())) out[`G.${k}`] = v;
  for (const [k, v] of Object.entries(D.stateDict())) out[`D.${k}`] = v;
  return out;
}

/** The largest |ours - PyTorch's| per tensor over every key; the keys must be the same. */
function maxDiffs(ours: Record<string, Tensor>, theirs: Record<string, Tensor>): Record<string, number> {
  expect(Object.keys(ours).sort()).toEqual(Object.keys(theirs).sort());
  return Object.fromEntries(Object.entries(ours).map(([k, t]) => [k, t.double().sub(theirs[k].double()).abs().max().item()]));
}

withTorch.each(Object.keys(VARIANTS) as Name[])('spectral norm in the fused step against PyTorch: %s', (name) => {
  const p = VARIANTS[name];

  test('the state dict has PyTorch’s keys in PyTorch’s order, and the same initial values (u, v drawn right after each layer)', () => {
    const { G, D } = build(p);
    const ours = state(G, D);
    expect(Object.keys(ours)).toEqual(Object.keys(fixture(name).init));
    expect(Object.keys(ours).filter((k) => k.endsWith('._u')).length).toBe(conv(name) ? 5 : 4);
    for (const [k, d] of Object.entries(maxDiffs(ours, tensors(name, 'init')))) if (d !== 0) throw new Error(`init ${k}: differs by ${d}`);
  });

  test('5 fused steps reproduce PyTorch’s losses (1e-5 relative) and final weights, u and v (1e-5 absolute)', () => {
    const { G, D, gan } = build(p);
    expect(gan.path).toBe(
      conv(name)
        ? "autograd: the generator's ConvTranspose2d generator.0 has spectral norm"
        : "autograd: the discriminator's Linear discriminator.0 has spectral norm",
    );
    const noise = tensors(name, 'noise');
    torch.manualSeed(99);
    const got = batches(name).map((x, i) => gan.step(x, { zD: noise[`zD.${i}`], zG: noise[`zG.${i}`] }));
    const want = fixture(name).steps;
    got.forEach((g, i) => {
      for (const k of ['dLoss', 'gLoss', 'dReal', 'dFake'] as const) {
        const rel = Math.abs(g[k] - want[i][k]) / Math.abs(want[i][k]);
        if (!(rel <= 1e-5)) throw new Error(`step ${i + 1} ${k}: ${g[k]}, PyTorch ${want[i][k]} (relative error ${rel.toExponential(2)})`);
      }
    });
    const init = tensors(name, 'init');
    const diffs = maxDiffs(state(G, D), tensors(name, 'final'));
    for (const [k, d] of Object.entries(diffs)) {
      if (!(d <= 1e-5)) throw new Error(`final ${k}: max abs difference ${d.toExponential(2)} > 1e-5`);
      // every tensor the steps train or update moved: the power iterations ran (but a 1-row u, always [1])
      if (/original|_v$|weight$/.test(k)) expect(init[k].allclose(tensors(name, 'final')[k], 0, 0)).toBe(false);
    }
  });
});

withTorch('spectral norm in the fused step: the epoch', () => {
  test('trainEpoch equals the same steps, and owns u and v while it runs', async () => {
    const p = snConv;
    const images = torch.tensor(mnist.subarray(0, 3 * p.batchSize * 784), [3 * p.batchSize, 1, 28, 28], { dtype: 'uint8' });
    const a = build(p);
    torch.manualSeed(7);
    const x = images.float().div(255).sub(0.5).div(0.5);
    const steps = [0, 1, 2].map((i) => a.gan.step(x.narrow(0, i * p.batchSize, p.batchSize)));
    const b = build(p);
    torch.manualSeed(7);
    const u = b.D.stateDict()['0.parametrizations.weight.0._u'];
    const epoch = b.gan.trainEpoch(images, { batchSize: p.batchSize, shuffle: false, normalize: '[-1,1]', recordSteps: true });
    expect(() => u.sum().item()).toThrow(/is in use by a running trainEpoch/);
    const r = await epoch;
    expect(Array.from(r.perStep!.filter((_, i) => i % 4 === 0))).toEqual(steps.map((s) => Math.fround(s.dLoss)));
    const [sa, sb] = [state(a.G, a.D), state(b.G, b.D)];
    for (const k of Object.keys(sa)) expect(sa[k].allclose(sb[k], 0, 0)).toBe(true);
  });
});

describe('spectral norm in the fused step: eval mode', () => {
  test("a model in eval mode runs no power iteration (its u and v stay), one in training mode does (as PyTorch's _SpectralNorm)", () => {
    const { G, D, gan } = build(snConv);
    G.eval();
    const uv = () => Object.entries(state(G, D)).filter(([k]) => /\._[uv]$/.test(k));
    const before = uv().map(([k, t]) => [k, t.clone()] as const);
    const r = gan.step(torch.rand([snConv.batchSize, 1, 28, 28]).mul(2).sub(1));
    expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
    const after = Object.fromEntries(uv());
    for (const [k, t] of before) expect([k, t.allclose(after[k], 0, 0)]).toEqual([k, k.startsWith('G.')]);
  });
});

describe('parametrizations the fused step does not run', () => {
  /** A parametrization of the user's own: the fused step cannot know what it computes. */
  class Double extends nn.Module {
    forward(w: Tensor): Tensor {
      return w.mul(2);
    }
  }
  const { spectralNorm } = nn.utils.parametrizations;
  const { registerParametrization } = nn.utils.parametrize;
  const advice =
    '; train this model on the facade (imperativeStep, or forward/backward/optimizer.step) or remove them (nn.utils.parametrize.removeParametrizations)';
  const only = 'the fused step runs one parametrization only, nn.utils.parametrizations.spectralNorm on the weight of Conv2d, ConvTranspose2d, Linear';

  it.each<[string, () => Module, string]>([
    ['a user parametrization', () => registerParametrization(new nn.Linear(8, 1), 'weight', new Double()), 'its weight is parametrized by Double'],
    [
      'spectral norm then another parametrization on one weight',
      () => registerParametrization(spectralNorm(new nn.Linear(8, 1)), 'weight', new Double()),
      'its weight is parametrized by SpectralNorm then Double',
    ],
    ['spectral norm of a bias', () => spectralNorm(new nn.Linear(8, 1), { name: 'bias' }), 'its bias is parametrized by SpectralNorm'],
    [
      'spectral norm of a weight and a bias',
      () => spectralNorm(spectralNorm(new nn.Linear(8, 1)), { name: 'bias' }),
      'its weight is parametrized by SpectralNorm, its bias is parametrized by SpectralNorm',
    ],
    ['spectral norm of a BatchNorm weight', () => spectralNorm(new nn.BatchNorm1d(8)), 'its weight is parametrized by SpectralNorm'],
  ])('%s is refused by name, saying why and what to do', (_, make, why) => {
    const last = make();
    const D = new nn.Sequential(new nn.Linear(784, 8), new nn.LeakyReLU(0.2), last);
    const message = `the fused trainer cannot run module 2 of type ${last.constructor.name}: ${why}; ${only}${advice}`;
    expect(() => nn.toNativeLayers(D)).toThrow(TypeError);
    expect(() => nn.toNativeLayers(D)).toThrow(message);
    const pv = presets.vanilla;
    const { generator: G } = buildModels(pv);
    expect(() => new GanStep(G, D, makeOptimizer(pv.optimizer, G.parameters()), makeOptimizer(pv.optimizer, D.parameters()), pv.step)).toThrow(message);
  });
});
