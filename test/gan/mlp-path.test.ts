/**
 * The MLP fast path (explicit forward/backward over reused buffers) against the autograd path of the same
 * step, on the variants the five seeds' presets do not cover: BatchNorm1d in D (each batch alone inside
 * the batched D), conditional MLPs, eval mode, bias-free Linear, an activation after an activation,
 * Dropout(0), BatchNorm without affine or running statistics. Same seeds, same draws: losses within 1e-5
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
const base: GanStepSpec = presets.vanilla.step;

interface Case {
  g: ModuleSpec;
  d: ModuleSpec;
  spec: Partial<GanStepSpec>;
  width: number;
  sgd?: boolean;
  eval?: 'G' | 'D';
}

const cases: Record<string, Case> = {
  'BatchNorm1d and Dropout in D, BatchNorm in G, logits, mean D loss': {
    g: seq(lin(8, 32, false), bn(32), { type: 'ReLU' }, lin(32, 20), { type: 'Tanh' }),
    d: seq(lin(20, 24, false), bn(24), leaky(), { type: 'Dropout', p: 0.3 }, lin(24, 1)),
    spec: { loss: 'bceWithLogits', dLossReduction: 'mean', separateDBackward: false, noise: { dist: 'normal', dim: 8 } },
    width: 20,
  },
  'conditional MLP (one-hot labels into G and D), reused fake, not detached': {
    g: seq(lin(8 + 10, 32), leaky(), lin(32, 20), { type: 'Tanh' }),
    d: seq(lin(20 + 10, 16), leaky(0.1), { type: 'Dropout', p: 0.2 }, lin(16, 1), { type: 'Sigmoid' }),
    spec: { gNoise: 'reuse', detachFakeForD: false, noise: { dist: 'uniform', dim: 8, low: -1, high: 1 }, conditioning: { classes: 10 } },
    width: 20,
  },
  'bias-free Linear, ReLU then Tanh, Dropout(0), LeakyReLU(0), SGD with momentum': {
    g: seq(lin(6, 16, false), { type: 'ReLU' }, { type: 'Tanh' }, lin(16, 12), { type: 'Sigmoid' }),
    d: seq(lin(12, 16), leaky(0), { type: 'Dropout', p: 0 }, lin(16, 1, false), { type: 'Sigmoid' }),
    spec: { realLabel: 0.9, noise: { dist: 'normal', dim: 6 } },
    width: 12,
    sgd: true,
  },
  'BatchNorm without affine and without running statistics in D': {
    g: seq(lin(5, 16), leaky(), lin(16, 10), { type: 'Tanh' }),
    d: seq(lin(10, 16, false), bn(16, { affine: false }), leaky(), lin(16, 8, false), bn(8, { trackRunningStats: false }), leaky(), lin(8, 1)),
    spec: { loss: 'bceWithLogits', noise: { dist: 'normal', dim: 5 } },
    width: 10,
  },
  'D in eval mode (Dropout off, BatchNorm on running statistics)': {
    g: seq(lin(5, 16), leaky(), lin(16, 10), { type: 'Tanh' }),
    d: seq(lin(10, 16), bn(16), leaky(), { type: 'Dropout', p: 0.5 }, lin(16, 1)),
    spec: { loss: 'bceWithLogits', noise: { dist: 'normal', dim: 5 } },
    width: 10,
    eval: 'D',
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
    xs.push(torch.rand([16, c.width]).mul(2).sub(1));
    ys.push(classes ? torch.randint(0, classes, [16]) : undefined);
  }
  torch.manualSeed(7);
  const steps: StepResult[] = xs.map((x, i) => gan.step(x, { labels: ys[i] }));
  const state = { ...G.stateDict(), ...Object.fromEntries(Object.entries(D.stateDict()).map(([k, v]) => [`D.${k}`, v])) };
  return { path: gan.path, steps, state };
}

describe.each(Object.entries(cases))('MLP fast path equals the autograd path: %s', (_, c) => {
  test('losses, parameters and BatchNorm buffers', () => {
    const fast = run(c, true);
    const slow = run(c, false);
    expect(fast.path).toBe('mlp');
    expect(slow.path).toBe('autograd: the MLP fast path is off (fastPath: false)');
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
    expect(gan.path).toBe('mlp');
    v.D.parameters()[0].requiresGrad = false;
    expect(gan.path).toBe("autograd: the discriminator's discriminator.0 does not require grad (a frozen layer)");
    // still trains, on the autograd path
    const r = gan.step(torch.rand([8, 784]));
    expect(Number.isFinite(r.dLoss)).toBe(true);
    v.D.parameters()[0].requiresGrad = true;
    expect(gan.path).toBe('mlp');

    const w = vanilla();
    const partial = w.gan(new Adam(w.G.parameters().slice(2)));
    expect(partial.path).toBe("autograd: the generator's optimizer does not train exactly the generator's parameters");
    expect(vanilla({ fastPath: false }).gan().path).toBe('autograd: the MLP fast path is off (fastPath: false)');
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

  test('profile() times the phases of the MLP path', () => {
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
