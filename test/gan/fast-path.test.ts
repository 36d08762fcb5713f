/**
 * The fast path (explicit forward/backward over reused buffers) against the autograd path of the same
 * step, on the variants the seeds' presets do not cover: BatchNorm1d in D (each batch alone inside
 * the batched D), conditional MLPs, eval mode, bias-free Linear, an activation after an activation,
 * Dropout(0), BatchNorm without affine or running statistics; and convolutional nets beyond dcgan and
 * cgan: convolutions with bias, fresh noise for G (its two batches through one BatchNorm2d each alone), a
 * mean D loss, an MLP head into a convolutional G (Unflatten) and a Linear after a Flatten in D. Same seeds, same draws: losses within 1e-5
 * relative, every parameter and buffer within 1e-5. The presets themselves are covered against PyTorch
 * in test/parity. A Linear before a BatchNorm has no bias here: its gradient is a rounding residue (BatchNorm
 * removes the mean), which Adam's first steps turn into +-lr on either path alike.
 */
import { fromSpec } from '../../ts/nn/from-spec';
import { type Module } from '../../ts/nn/module';
import { type ModuleSpec } from '../../ts/nn/spec';
import { Adam, SGD } from '../../ts/optim/optimizer';
import * as torch from '../../ts/tensor/torch';
import { type Tensor } from '../../ts/tensor/tensor';
import { GanStep, type StepResult } from '../../ts/gan/gan-step';
import { type GanStepSpec } from '../../ts/gan/step-spec';
import { presets } from '../../ts/gan/presets';

const seq = (...children: ModuleSpec[]): ModuleSpec => ({ type: 'Sequential', children });
const lin = (i: number, o: number, bias = true): ModuleSpec => ({ type: 'Linear', inFeatures: i, outFeatures: o, bias });
const bn = (n: number, extra: object = {}): ModuleSpec => ({ type: 'BatchNorm1d', numFeatures: n, ...extra }) as ModuleSpec;
const leaky = (s = 0.2): ModuleSpec => ({ type: 'LeakyReLU', negativeSlope: s });
const conv = (type: 'Conv2d' | 'ConvTranspose2d', i: number, o: number, k: number, s: number, p: number, bias = true): ModuleSpec => ({
  type,
  inChannels: i,
  outChannels: o,
  kernelSize: k,
  stride: s,
  padding: p,
  bias,
});
const bn2 = (n: number): ModuleSpec => ({ type: 'BatchNorm2d', numFeatures: n });
const base: GanStepSpec = presets.vanilla.step;

interface Case {
  g: ModuleSpec;
  d: ModuleSpec;
  spec: Partial<GanStepSpec>;
  /** One real sample's sizes: [features] or [C, H, W]. */
  sample: number[];
  sgd?: boolean;
  eval?: 'G' | 'D';
}

const cases: Record<string, Case> = {
  'BatchNorm1d and Dropout in D, BatchNorm in G, logits, mean D loss': {
    g: seq(lin(8, 32, false), bn(32), { type: 'ReLU' }, lin(32, 20), { type: 'Tanh' }),
    d: seq(lin(20, 24, false), bn(24), leaky(), { type: 'Dropout', p: 0.3 }, lin(24, 1)),
    spec: { loss: 'bceWithLogits', dLossReduction: 'mean', separateDBackward: false, noise: { dist: 'normal', dim: 8 } },
    sample: [20],
  },
  'conditional MLP (one-hot labels into G and D), reused fake, not detached': {
    g: seq(lin(8 + 10, 32), leaky(), lin(32, 20), { type: 'Tanh' }),
    d: seq(lin(20 + 10, 16), leaky(0.1), { type: 'Dropout', p: 0.2 }, lin(16, 1), { type: 'Sigmoid' }),
    spec: { gNoise: 'reuse', detachFakeForD: false, noise: { dist: 'uniform', dim: 8, low: -1, high: 1 }, conditioning: { classes: 10 } },
    sample: [20],
  },
  'bias-free Linear, ReLU then Tanh, Dropout(0), LeakyReLU(0), SGD with momentum': {
    g: seq(lin(6, 16, false), { type: 'ReLU' }, { type: 'Tanh' }, lin(16, 12), { type: 'Sigmoid' }),
    d: seq(lin(12, 16), leaky(0), { type: 'Dropout', p: 0 }, lin(16, 1, false), { type: 'Sigmoid' }),
    spec: { realLabel: 0.9, noise: { dist: 'normal', dim: 6 } },
    sample: [12],
    sgd: true,
  },
  'BatchNorm without affine and without running statistics in D': {
    g: seq(lin(5, 16), leaky(), lin(16, 10), { type: 'Tanh' }),
    d: seq(lin(10, 16, false), bn(16, { affine: false }), leaky(), lin(16, 8, false), bn(8, { trackRunningStats: false }), leaky(), lin(8, 1)),
    spec: { loss: 'bceWithLogits', noise: { dist: 'normal', dim: 5 } },
    sample: [10],
  },
  'D in eval mode (Dropout off, BatchNorm on running statistics)': {
    g: seq(lin(5, 16), leaky(), lin(16, 10), { type: 'Tanh' }),
    d: seq(lin(10, 16), bn(16), leaky(), { type: 'Dropout', p: 0.5 }, lin(16, 1)),
    spec: { loss: 'bceWithLogits', noise: { dist: 'normal', dim: 5 } },
    sample: [10],
    eval: 'D',
  },
  'conv: ConvTranspose2d/BatchNorm2d G, Conv2d with bias and BatchNorm2d in D, reused fake (dcgan-like)': {
    g: seq(conv('ConvTranspose2d', 6, 16, 4, 1, 0, false), bn2(16), { type: 'ReLU' }, conv('ConvTranspose2d', 16, 2, 4, 2, 1), { type: 'Tanh' }),
    d: seq(conv('Conv2d', 2, 8, 4, 2, 1), leaky(), conv('Conv2d', 8, 16, 3, 1, 1, false), bn2(16), leaky(), conv('Conv2d', 16, 1, 4, 1, 0), {
      type: 'Flatten',
    }),
    spec: { loss: 'bceWithLogits', gNoise: 'reuse', detachFakeForD: true, separateDBackward: true, noise: { dist: 'normal', dim: 6, shape: [6, 1, 1] } },
    sample: [2, 8, 8],
  },
  'conditional conv, fresh noise (G’s two batches in one pass), mean D loss, Linear after Flatten': {
    g: seq(conv('ConvTranspose2d', 5 + 3, 8, 4, 1, 0, false), bn2(8), { type: 'ReLU' }, conv('ConvTranspose2d', 8, 1, 4, 2, 1, false), { type: 'Tanh' }),
    d: seq(conv('Conv2d', 1 + 3, 8, 4, 2, 1, false), bn2(8), leaky(), { type: 'Flatten' }, lin(8 * 4 * 4, 1)),
    spec: {
      loss: 'bceWithLogits',
      dLossReduction: 'mean',
      separateDBackward: false,
      noise: { dist: 'normal', dim: 5, shape: [5, 1, 1] },
      conditioning: { classes: 3 },
    },
    sample: [1, 8, 8],
  },
  'an MLP head into a convolutional G (Linear, Unflatten), SGD': {
    g: seq(
      lin(7, 16 * 4 * 4),
      { type: 'Unflatten', dim: 1, unflattenedSize: [16, 4, 4] } as ModuleSpec,
      bn2(16),
      { type: 'ReLU' },
      conv('ConvTranspose2d', 16, 1, 4, 2, 1),
      {
        type: 'Sigmoid',
      },
    ),
    d: seq(conv('Conv2d', 1, 8, 4, 2, 1), leaky(), { type: 'Flatten' }, lin(8 * 4 * 4, 1), { type: 'Sigmoid' }),
    spec: { noise: { dist: 'normal', dim: 7 } },
    sample: [1, 8, 8],
    sgd: true,
  },
};

function run(c: Case, fastPath: boolean) {
  torch.manualSeed(3);
  const G = fromSpec(c.g);
  const D = fromSpec(c.d);
  if (c.eval === 'D') D.eval();
  const mk = (m: Module) => (c.sgd ? new SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }) : new Adam(m.parameters(), { lr: 1e-2 }));
  const spec = { ...base, ...c.spec } as GanStepSpec;
  const gan = new GanStep(G, D, mk(G), mk(D), spec, { fastPath });
  const classes = spec.conditioning?.classes ?? 0;
  const xs: Tensor[] = [];
  const ys: (Tensor | undefined)[] = [];
  for (let i = 0; i < 4; i++) {
    xs.push(
      torch
        .rand([16, ...c.sample])
        .mul(2)
        .sub(1),
    );
    ys.push(classes ? torch.randint(0, classes, [16]) : undefined);
  }
  torch.manualSeed(7);
  const steps: StepResult[] = xs.map((x, i) => gan.step(x, { labels: ys[i] }));
  const state = { ...G.stateDict(), ...Object.fromEntries(Object.entries(D.stateDict()).map(([k, v]) => [`D.${k}`, v])) };
  return { path: gan.path, steps, state };
}

describe.each(Object.entries(cases))('the fast path equals the autograd path: %s', (_, c) => {
  test('losses, parameters and BatchNorm buffers', () => {
    const fast = run(c, true);
    const slow = run(c, false);
    expect(fast.path).toBe('fast');
    expect(slow.path).toBe('autograd: the fast path is off (fastPath: false)');
    for (const [i, s] of fast.steps.entries()) {
      for (const k of ['dLoss', 'gLoss', 'dReal', 'dFake'] as const) {
        const want = slow.steps[i][k];
        expect(Math.abs(s[k] - want) / Math.max(Math.abs(want), 1e-12)).toBeLessThan(1e-5);
      }
    }
    expect(Object.keys(fast.state).sort()).toEqual(Object.keys(slow.state).sort());
    for (const [k, t] of Object.entries(fast.state)) {
      const diff = t.double().sub(slow.state[k].double()).abs().max().item();
      if (diff > 1e-5) throw new Error(`${k}: max abs difference ${diff}`);
    }
  });
});

describe('which path a step takes', () => {
  function vanilla(options = {}) {
    torch.manualSeed(1);
    const G = fromSpec(presets.vanilla.generator);
    const D = fromSpec(presets.vanilla.discriminator);
    return { G, D, gan: (optG = new Adam(G.parameters()), optD = new Adam(D.parameters())) => new GanStep(G, D, optG, optD, presets.vanilla.step, options) };
  }

  test('the MLP presets take it; a frozen parameter, an optimizer over part of a model or fastPath: false do not', () => {
    const v = vanilla();
    const gan = v.gan();
    expect(gan.path).toBe('fast');
    v.D.parameters()[0].requiresGrad = false;
    expect(gan.path).toBe("autograd: the discriminator's discriminator.0 does not require grad (a frozen layer)");
    // still trains, on the autograd path
    const r = gan.step(torch.rand([8, 784]));
    expect(Number.isFinite(r.dLoss)).toBe(true);
    v.D.parameters()[0].requiresGrad = true;
    expect(gan.path).toBe('fast');

    const w = vanilla();
    const partial = w.gan(new Adam(w.G.parameters().slice(2)));
    expect(partial.path).toBe("autograd: the generator's optimizer does not train exactly the generator's parameters");
    expect(vanilla({ fastPath: false }).gan().path).toBe('autograd: the fast path is off (fastPath: false)');
    expect(() => vanilla({ fastpath: false }).gan()).toThrow(
      'GanStep(options): unknown option "fastpath": did you mean fastPath? (options: capturable, cudaGraphs, fastPath, precision, processGroup)',
    );
    expect(() => vanilla({ fastPath: 'no' }).gan()).toThrow(/fastPath/);
  });

  test('a LeakyReLU with a negative slope takes the autograd path, and gives the same step', () => {
    torch.manualSeed(1);
    const G = fromSpec(seq(lin(4, 8), leaky(-0.5), lin(8, 6), { type: 'Tanh' }));
    const D = fromSpec(seq(lin(6, 8), leaky(), lin(8, 1), { type: 'Sigmoid' }));
    const gan = new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), { ...base, noise: { dist: 'normal', dim: 4 } });
    expect(gan.path).toBe("autograd: the generator's LeakyReLU generator.1 has a negative slope");
  });

  test('the convolutional presets take it; Dropout in a convolutional net and spectral norm do not', () => {
    for (const name of ['dcgan', 'cgan'] as const) {
      const p = presets[name];
      const G = fromSpec(p.generator);
      const D = fromSpec(p.discriminator);
      expect(new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), p.step).path).toBe('fast');
    }
    torch.manualSeed(1);
    const G = fromSpec(seq(conv('ConvTranspose2d', 4, 1, 4, 1, 0), { type: 'Tanh' }));
    const D = fromSpec(seq(conv('Conv2d', 1, 4, 4, 1, 0), { type: 'Dropout', p: 0.5 } as ModuleSpec, { type: 'Flatten' }));
    const spec = { ...base, loss: 'bceWithLogits', noise: { dist: 'normal', dim: 4, shape: [4, 1, 1] } } as GanStepSpec;
    const gan = new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), spec);
    expect(gan.path).toBe("autograd: the discriminator's Dropout discriminator.1 is in a convolutional net");
    expect(Number.isFinite(gan.step(torch.rand([4, 1, 4, 4])).dLoss)).toBe(true);
  });

  test('profile() times the phases of the fast path', () => {
    const gan = vanilla().gan();
    expect(gan.phases()).toBeNull();
    expect(gan.profile(true)).toBe(true);
    const x = torch.rand([16, 784]);
    gan.step(x);
    gan.step(x);
    const p = gan.phases()!;
    expect(p.steps).toBe(2);
    for (const k of ['dForward', 'dBackward', 'gForward', 'gBackward', 'updates', 'losses', 'masks'] as const) expect(p[k]).toBeGreaterThan(0);
    gan.profile(false);
    gan.step(x);
    expect(gan.phases()!.steps).toBe(0);
    expect(() => gan.profile('yes' as unknown as boolean)).toThrow(/GanStep.profile/);
    const conv = vanilla({ fastPath: false }).gan();
    expect(conv.profile(true)).toBe(false);
    expect(conv.phases()).toBeNull();
  });
});
