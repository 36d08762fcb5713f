import * as F from '../../ts/nn/functional';
import { BatchNorm1d } from '../../ts/nn/batchnorm';
import { Dropout, LeakyReLU, Linear, Sequential, Tanh } from '../../ts/nn/layers';
import { BCEWithLogitsLoss, MSELoss } from '../../ts/nn/loss';
import { Adam, SGD } from '../../ts/optim/optimizer';
import * as torch from '../../ts/tensor/torch';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { noise } from '../../ts/gan/noise';
import { fromSpec } from '../../ts/nn/from-spec';
import { presets } from '../../ts/gan/presets';

describe('nn', () => {
  const G = () => new Sequential(new Linear(100, 256), new LeakyReLU(0.2), new Sequential(new Linear(256, 784), new Tanh()));

  it('names parameters as PyTorch state_dict keys, nested Sequential included', () => {
    expect(
      G()
        .namedParameters()
        .map(([n, p]) => `${n}:${p.shape}`),
    ).toEqual(['0.weight:256,100', '0.bias:256', '2.0.weight:784,256', '2.0.bias:784']);
    const bn = new Sequential(new Linear(4, 3), new BatchNorm1d(3));
    expect(Object.keys(bn.stateDict())).toEqual(['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
  });

  it('Linear init follows kaiming_uniform(a=sqrt(5)): |w| <= 1/sqrt(in)', () => {
    const l = new Linear(400, 50);
    expect(l.weight.abs().max().item()).toBeLessThanOrEqual(1 / Math.sqrt(400));
    expect(l.weight.abs().max().item()).toBeGreaterThan(0.9 / Math.sqrt(400));
  });

  it('loadStateDict: strict errors list missing, unexpected and mismatched keys', () => {
    const a = G();
    const b = G();
    b.loadStateDict(a.stateDict());
    expect(b.parameters()[0].allclose(a.parameters()[0], 0, 0)).toBe(true);
    const sd = a.stateDict();
    delete sd['0.bias'];
    sd['9.weight'] = torch.ones([1]);
    sd['0.weight'] = torch.ones([256, 128]);
    expect(() => b.loadStateDict(sd)).toThrow(
      'Error(s) in loading state_dict for Sequential:\n\tMissing key(s) in state_dict: "0.bias".\n\tUnexpected key(s) in state_dict: "9.weight".\n\tsize mismatch for 0.weight: copying a param with shape [256, 128] from checkpoint, the shape in current model is [256, 100].',
    );
  });

  it('train/eval switch dropout and batch norm', () => {
    const d = new Dropout(0.5);
    const x = torch.ones([1000]);
    expect(d.forward(x).eq(0).sum().item()).toBeGreaterThan(300);
    d.eval();
    expect(d.forward(x).eq(0).sum().item()).toBe(0);
    const bn = new BatchNorm1d(2);
    bn.forward(
      torch.tensor([
        [1, 2],
        [3, 6],
      ]),
    );
    expect((bn.stateDict().running_mean.tolist() as number[]).map((v) => Number(v.toFixed(4)))).toEqual([0.2, 0.4]);
    expect(bn.stateDict().num_batches_tracked.item()).toBe(1);
    bn.eval();
    bn.forward(
      torch.tensor([
        [1, 2],
        [3, 6],
      ]),
    );
    expect(bn.stateDict().num_batches_tracked.item()).toBe(1);
  });

  it('shape errors name the shapes', () => {
    expect(() => new Linear(784, 1).forward(torch.ones([64, 100]))).toThrow(
      'Linear(784, 1): expected an input whose last dimension is 784, got shape [64, 100]',
    );
    expect(() => new BCEWithLogitsLoss().forward(torch.ones([64, 1]), torch.ones([64]))).toThrow(
      /target size \(\[64\]\) that is different to the input size \(\[64, 1\]\)/,
    );
    expect(() => new Linear(0, 3)).toThrow(/inFeatures: expected a positive integer, got 0/);
    expect(() => new Dropout(1.5)).toThrow(/between 0 and 1, but got 1.5/);
    expect(() => new Sequential({} as never)).toThrow(/argument 0 is not a Module/);
  });

  it('losses and reductions', () => {
    const x = torch.tensor([[0.0], [2.0]]);
    const y = torch.tensor([[1.0], [0.0]]);
    const none = F.binaryCrossEntropyWithLogits(x, y, { reduction: 'none' }).tolist() as number[][];
    expect(none[0][0]).toBeCloseTo(Math.log(2), 6);
    expect(none[1][0]).toBeCloseTo(Math.log(1 + Math.exp(2)), 6);
    expect(F.binaryCrossEntropyWithLogits(x, y, { reduction: 'sum' }).item()).toBeCloseTo(none[0][0] + none[1][0], 6);
    expect(new MSELoss().forward(x, y).item()).toBeCloseTo((1 + 4) / 2, 6);
    expect(() => F.mseLoss(x, y, { reduction: 'avg' as never })).toThrow(/mseLoss: reduction: expected 'none', 'mean' or 'sum', got "avg"/);
    expect(() => F.mseLoss(x, y, { reductoin: 'sum' } as never)).toThrow(/mseLoss: unknown option "reductoin": did you mean reduction\?/);
  });
});

describe('optim', () => {
  it('SGD with momentum follows PyTorch’s update rule', () => {
    const w = torch.tensor([1.0], { requiresGrad: true });
    const opt = new SGD([w], { lr: 0.1, momentum: 0.9 });
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      w.mul(w).sum().backward(); // grad = 2w
      opt.step();
    }
    // buf1 = 2, w1 = 0.8; buf2 = 0.9*2 + 1.6 = 3.4, w2 = 0.46; buf3 = 3.06 + 0.92 = 3.98, w3 = 0.062
    expect(w.item()).toBeCloseTo(0.062, 6);
  });

  it('Adam stateDict/loadStateDict resume bit-exactly; lr is settable', () => {
    torch.manualSeed(0);
    const a = new Linear(5, 3);
    const optA = new Adam(a.parameters(), { lr: 0.01, betas: [0.5, 0.999] });
    const x = torch.randn([4, 5]);
    const stepOn = (m: Linear, opt: Adam) => {
      opt.zeroGrad();
      m.forward(x).pow(2).mean().backward();
      opt.step();
    };
    stepOn(a, optA);
    const b = new Linear(5, 3);
    b.loadStateDict(a.stateDict());
    expect(() => new Adam(b.parameters(), { lr: 0.5 }).loadStateDict(optA.stateDict())).toThrow(
      /betas: the state has \[0.5,0.999\], this optimizer \[0.9,0.999\]/,
    );
    const optB = new Adam(b.parameters(), { lr: 0.5, betas: [0.5, 0.999] });
    optB.loadStateDict(optA.stateDict());
    expect(optB.paramGroups[0].lr).toBe(0.01);
    expect(optA.stateDict().state[0].step).toBe(1);
    stepOn(a, optA);
    stepOn(b, optB);
    expect(b.weight.allclose(a.weight, 0, 0)).toBe(true);
    optA.paramGroups[0].lr = 0.02;
    expect(optA.paramGroups[0].lr).toBe(0.02);
  });

  it('Adam({ fused: true }) equals the single-tensor update up to rounding (weight decay, maximize too)', () => {
    for (const extra of [{}, { weightDecay: 0.01 }, { maximize: true }]) {
      torch.manualSeed(4);
      const a = new Linear(300, 200);
      const b = new Linear(300, 200);
      b.loadStateDict(a.stateDict());
      const optA = new Adam(a.parameters(), { lr: 1e-3, ...extra });
      const optB = new Adam(b.parameters(), { lr: 1e-3, fused: true, ...extra });
      for (let i = 0; i < 10; i++) {
        const x = torch.randn([16, 300]);
        for (const [m, o] of [
          [a, optA],
          [b, optB],
        ] as const) {
          o.zeroGrad();
          m.forward(x).pow(2).mean().backward();
          o.step();
        }
      }
      const diff = a.weight.sub(b.weight).abs().max().item();
      expect(diff).toBeLessThan(1e-6);
      expect(optB.stateDict().state[0].step).toBe(10);
      expect(optB.stateDict().state[0].exp_avg).toBeDefined();
    }
  });

  it('bad hyperparameters are rejected with the value', () => {
    const l = new Linear(2, 2);
    expect(() => new Adam(l.parameters(), { lr: -1 })).toThrow(/invalid learning rate/);
    expect(() => new Adam(l.parameters(), { betas: [1.2, 0.9] })).toThrow(/invalid beta at index 0/);
    expect(() => new Adam([])).toThrow(/non-empty array of Tensors/);
  });
});

describe('memory', () => {
  // Tensor memory is freed at once by scope()/dispose(); the small JS handles are finalized by
  // Node-API on a later event-loop turn, so the loop yields as any real training loop does.
  it('10,000 imperative training steps of a small GAN keep memory flat', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    torch.manualSeed(0);
    const spec = { ...presets.vanilla.step, noise: { dist: 'normal' as const, dim: 16 } };
    const G = fromSpec({
      type: 'Sequential',
      children: [
        { type: 'Linear', inFeatures: 16, outFeatures: 32 },
        { type: 'LeakyReLU', negativeSlope: 0.2 },
        { type: 'Linear', inFeatures: 32, outFeatures: 64 },
        { type: 'Tanh' },
      ],
    });
    const D = fromSpec({
      type: 'Sequential',
      children: [
        { type: 'Linear', inFeatures: 64, outFeatures: 32 },
        { type: 'LeakyReLU', negativeSlope: 0.2 },
        { type: 'Linear', inFeatures: 32, outFeatures: 1 },
        { type: 'Sigmoid' },
      ],
    });
    const optG = new Adam(G.parameters(), { lr: 2e-4 });
    const optD = new Adam(D.parameters(), { lr: 2e-4 });
    const real = torch.rand([8, 64]).mul(2).sub(1);
    const rss: number[] = [];
    for (let i = 0; i < 10000; i++) {
      imperativeStep(G, D, optG, optD, spec, real);
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      if (i % 1000 === 999) {
        gc(); // collect the JS handles of freed tensors, so RSS shows native memory, not garbage
        rss.push(process.memoryUsage().rss);
      }
    }
    noise(spec.noise, 1).dispose();
    const growthMiB = (rss[rss.length - 1] - rss[1]) / 2 ** 20;
    expect(rss).toHaveLength(10);
    expect(growthMiB).toBeLessThan(8);
  }, 120000);
});
