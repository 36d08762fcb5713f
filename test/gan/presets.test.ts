import { type ModuleSpec } from '../../ts/nn/spec';
import {
  countParameters,
  DEFAULT_PRESET,
  getPreset,
  IMAGE_FEATURES,
  namedLayers,
  PRESET_NAMES,
  presets,
  withZDim,
  type Preset,
  type PresetName,
} from '../../ts/gan/presets';
import { findPython, runPython } from '../helpers/python';

type Linear = Extract<ModuleSpec, { type: 'Linear' }>;
const leafTypes = (spec: ModuleSpec) => namedLayers(spec).map((l) => l.spec.type);
const linears = (spec: ModuleSpec) => namedLayers(spec).flatMap((l) => (l.spec.type === 'Linear' ? [l.spec as Linear] : []));
const sizes = (spec: ModuleSpec) => {
  const ls = linears(spec);
  return [ls[0].inFeatures, ...ls.map((l) => l.outFeatures)];
};
const all = PRESET_NAMES.map((n) => [n, presets[n]] as [PresetName, Preset]);

describe('preset table', () => {
  test('five presets, one per seed, vanilla is the default', () => {
    expect([...PRESET_NAMES]).toEqual(['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla']);
    expect(PRESET_NAMES.map((n) => presets[n].seed)).toEqual(['000', '001', '002', '003', '004']);
    expect(DEFAULT_PRESET).toBe('vanilla');
    for (const [name, p] of all) expect(p.name).toBe(name);
  });

  test.each(all)('%s: one-line description and differsFromReadme', (_, p) => {
    for (const s of [p.description, p.differsFromReadme]) {
      expect(s.length).toBeGreaterThan(20);
      expect(s).not.toMatch(/\n/);
    }
  });

  test.each(all)('%s: Linear sizes chain in G and D; G ends in 784, D in 1', (_, p) => {
    for (const spec of [p.generator, p.discriminator]) {
      expect(spec.type).toBe('Sequential');
      const ls = linears(spec);
      for (let i = 1; i < ls.length; i++) expect(ls[i].inFeatures).toBe(ls[i - 1].outFeatures);
      // BatchNorm1d follows a Linear with the same width
      const layers = namedLayers(spec);
      layers.forEach((l, i) => {
        if (l.spec.type === 'BatchNorm1d') {
          const prev = layers[i - 1].spec as Linear;
          expect(prev.type).toBe('Linear');
          expect(l.spec.numFeatures).toBe(prev.outFeatures);
        }
      });
    }
    expect(linears(p.generator)[0].inFeatures).toBe(p.zDim);
    expect(p.step.noise.dim).toBe(p.zDim);
    expect(sizes(p.generator).at(-1)).toBe(IMAGE_FEATURES);
    expect(sizes(p.discriminator)[0]).toBe(IMAGE_FEATURES);
    expect(sizes(p.discriminator).at(-1)).toBe(1);
    // G's output activation matches the pixel range; D's last layer matches the loss
    expect(leafTypes(p.generator).at(-1)).toBe(p.normalize === '[0,1]' ? 'Sigmoid' : 'Tanh');
    expect(leafTypes(p.discriminator).at(-1)).toBe(p.step.loss === 'bce' ? 'Sigmoid' : 'Linear');
  });

  test('exact layer sizes', () => {
    expect(sizes(presets.seed000.generator)).toEqual([128, 1024, 1024, 784]);
    expect(sizes(presets.seed000.discriminator)).toEqual([784, 256, 256, 1]);
    expect(sizes(presets.udacity.generator)).toEqual([100, 32, 64, 128, 784]);
    expect(sizes(presets.udacity.discriminator)).toEqual([784, 128, 64, 32, 1]);
    expect(sizes(presets.ganist.generator)).toEqual([10, 128, 256, 512, 1024, 784]);
    expect(sizes(presets.ganist.discriminator)).toEqual([784, 512, 256, 128, 1]);
    expect(sizes(presets.tensorboard.generator)).toEqual([100, 256, 512, 1024, 784]);
    expect(sizes(presets.tensorboard.discriminator)).toEqual([784, 1024, 512, 256, 1]);
    expect(sizes(presets.vanilla.generator)).toEqual([100, 256, 512, 1024, 784]);
    expect(sizes(presets.vanilla.discriminator)).toEqual([784, 1024, 512, 256, 1]);
  });

  test('exact module sequences (activations, slopes, dropout)', () => {
    const show = (spec: ModuleSpec) =>
      namedLayers(spec).map(({ spec: s }) =>
        s.type === 'Linear'
          ? `L${s.outFeatures}`
          : s.type === 'LeakyReLU'
            ? `LReLU(${s.negativeSlope})`
            : s.type === 'Dropout'
              ? `Drop(${s.p})`
              : s.type === 'BatchNorm1d'
                ? `BN${s.numFeatures}`
                : s.type,
      );
    expect(show(presets.seed000.generator)).toEqual(['L1024', 'ReLU', 'L1024', 'ReLU', 'L784', 'Tanh']);
    expect(show(presets.seed000.discriminator)).toEqual(['L256', 'LReLU(0.2)', 'L256', 'LReLU(0.2)', 'L1', 'Sigmoid']);
    expect(show(presets.udacity.generator)).toEqual([
      'L32',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L64',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L128',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L784',
      'Tanh',
    ]);
    expect(show(presets.udacity.discriminator)).toEqual([
      'L128',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L64',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L32',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L1',
    ]);
    expect(show(presets.ganist.generator)).toEqual([
      'L128',
      'BN128',
      'ReLU',
      'L256',
      'BN256',
      'ReLU',
      'L512',
      'BN512',
      'ReLU',
      'L1024',
      'BN1024',
      'ReLU',
      'L784',
      'Sigmoid',
    ]);
    expect(show(presets.ganist.discriminator)).toEqual(['L512', 'LReLU(0.2)', 'L256', 'LReLU(0.2)', 'L128', 'LReLU(0.2)', 'L1']);
    expect(show(presets.tensorboard.generator)).toEqual(['L256', 'ReLU', 'L512', 'ReLU', 'L1024', 'ReLU', 'L784', 'Tanh']);
    expect(show(presets.tensorboard.discriminator)).toEqual([
      'L1024',
      'ReLU',
      'Drop(0.2)',
      'L512',
      'ReLU',
      'Drop(0.2)',
      'L256',
      'LReLU(0.1)',
      'Drop(0.2)',
      'L1',
      'Sigmoid',
    ]);
    expect(show(presets.vanilla.generator)).toEqual(['L256', 'LReLU(0.2)', 'L512', 'LReLU(0.2)', 'L1024', 'LReLU(0.2)', 'L784', 'Tanh']);
    expect(show(presets.vanilla.discriminator)).toEqual([
      'L1024',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L512',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L256',
      'LReLU(0.2)',
      'Drop(0.3)',
      'L1',
      'Sigmoid',
    ]);
  });

  test('ganist nests its blocks like the PyTorch script (state-dict names)', () => {
    const names = countParameters(presets.ganist.generator).layers.flatMap((l) => l.tensors.map((t) => t.name));
    expect(names).toEqual([
      '0.0.weight',
      '0.0.bias',
      '0.1.weight',
      '0.1.bias',
      '1.0.weight',
      '1.0.bias',
      '1.1.weight',
      '1.1.bias',
      '2.0.weight',
      '2.0.bias',
      '2.1.weight',
      '2.1.bias',
      '3.0.weight',
      '3.0.bias',
      '3.1.weight',
      '3.1.bias',
      '4.weight',
      '4.bias',
    ]);
    const d = countParameters(presets.ganist.discriminator).layers.flatMap((l) => l.tensors.map((t) => t.name));
    expect(d).toEqual(['0.0.weight', '0.0.bias', '1.0.weight', '1.0.bias', '2.0.weight', '2.0.bias', '3.weight', '3.bias']);
  });

  test('hyper-parameters as trained', () => {
    const hp = (p: Preset) => [p.batchSize, p.epochs, p.zDim, p.normalize, p.optimizer.lr];
    expect(hp(presets.seed000)).toEqual([16, 100, 128, '[-1,1]', 2e-4]);
    expect(hp(presets.udacity)).toEqual([64, 100, 100, '[-1,1]', 2e-3]);
    expect(hp(presets.ganist)).toEqual([128, 200, 10, '[0,1]', 1e-5]);
    expect(hp(presets.tensorboard)).toEqual([32, 50, 100, '[-1,1]', 3e-4]);
    expect(hp(presets.vanilla)).toEqual([100, 200, 100, '[-1,1]', 2e-4]);
    for (const [, p] of all) {
      expect(p.optimizer).toEqual({ type: 'adam', lr: p.optimizer.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
    }
  });

  test('step variants', () => {
    const { seed000, udacity, ganist, tensorboard, vanilla } = presets;
    expect(seed000.step).toEqual({
      loss: 'bce',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'sum',
      detachFakeForD: true,
      gNoise: 'fresh',
      separateDBackward: false,
      noise: { dist: 'uniform', dim: 128, low: -1, high: 1 },
    });
    expect(udacity.step).toEqual({
      loss: 'bceWithLogits',
      realLabel: 0.9,
      fakeLabel: 0,
      dLossReduction: 'sum',
      detachFakeForD: true,
      gNoise: 'fresh',
      separateDBackward: false,
      noise: { dist: 'uniform', dim: 100, low: -1, high: 1 },
    });
    expect(ganist.step).toEqual({
      loss: 'bceWithLogits',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'mean',
      detachFakeForD: true,
      gNoise: 'fresh',
      separateDBackward: false,
      noise: { dist: 'normal', dim: 10 },
    });
    expect(tensorboard.step).toEqual({
      loss: 'bce',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'mean',
      detachFakeForD: false,
      gNoise: 'reuse',
      separateDBackward: false,
      noise: { dist: 'normal', dim: 100 },
    });
    expect(vanilla.step).toEqual({
      loss: 'bce',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'sum',
      detachFakeForD: true,
      gNoise: 'fresh',
      separateDBackward: true,
      noise: { dist: 'normal', dim: 100 },
    });
    // only udacity smooths, only tensorboard keeps the graph, only vanilla backprops separately
    expect(all.filter(([, p]) => p.step.realLabel !== 1).map(([n]) => n)).toEqual(['udacity']);
    expect(all.filter(([, p]) => !p.step.detachFakeForD).map(([n]) => n)).toEqual(['tensorboard']);
    expect(all.filter(([, p]) => p.step.separateDBackward).map(([n]) => n)).toEqual(['vanilla']);
    expect(all.filter(([, p]) => p.normalize === '[0,1]').map(([n]) => n)).toEqual(['ganist']);
  });

  test('presets are frozen; getPreset returns an independent mutable copy', () => {
    expect(Object.isFrozen(presets.vanilla.generator)).toBe(true);
    const p = getPreset('vanilla');
    expect(p).toEqual(presets.vanilla);
    p.batchSize = 7;
    p.optimizer.lr = 1;
    expect(presets.vanilla.batchSize).toBe(100);
    expect(presets.vanilla.optimizer.lr).toBe(2e-4);
  });

  test('getPreset rejects unknown names listing the valid ones', () => {
    expect(() => getPreset('nope')).toThrow(new Error('unknown preset "nope"; valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan'));
    expect(() => getPreset('tensorbord')).toThrow(
      'unknown preset "tensorbord" (did you mean "tensorboard"?); valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan',
    );
    expect(() => getPreset('toString')).toThrow(/unknown preset "toString"/);
  });
});

describe('countParameters', () => {
  // Linear: in*out + out; BatchNorm1d: 2n
  const expected: Record<PresetName, { g: number[]; d: number[]; gTotal: number; dTotal: number }> = {
    seed000: {
      g: [128 * 1024 + 1024, 1024 * 1024 + 1024, 1024 * 784 + 784],
      d: [784 * 256 + 256, 256 * 256 + 256, 256 + 1],
      gTotal: 1_985_296,
      dTotal: 267_009,
    },
    udacity: {
      g: [100 * 32 + 32, 32 * 64 + 64, 64 * 128 + 128, 128 * 784 + 784],
      d: [784 * 128 + 128, 128 * 64 + 64, 64 * 32 + 32, 32 + 1],
      gTotal: 114_800,
      dTotal: 110_849,
    },
    ganist: {
      g: [1408, 256, 33_024, 512, 131_584, 1024, 525_312, 2048, 803_600],
      d: [784 * 512 + 512, 512 * 256 + 256, 256 * 128 + 128, 128 + 1],
      gTotal: 1_498_768,
      dTotal: 566_273,
    },
    tensorboard: {
      g: [25_856, 131_584, 525_312, 803_600],
      d: [803_840, 524_800, 131_328, 257],
      gTotal: 1_486_352,
      dTotal: 1_460_225,
    },
    vanilla: {
      g: [100 * 256 + 256, 256 * 512 + 512, 512 * 1024 + 1024, 1024 * 784 + 784],
      d: [784 * 1024 + 1024, 1024 * 512 + 512, 512 * 256 + 256, 256 * 1 + 1],
      gTotal: 1_486_352,
      dTotal: 1_460_225,
    },
    // ConvTranspose2d: in*out*k*k (bias=False); BatchNorm2d: 2n; totals as PyTorch's numel sums
    dcgan: { g: [100 * 128 * 49, 256, 128 * 64 * 16, 128, 64 * 16], d: [64 * 16, 64 * 128 * 16, 256, 128 * 49], gTotal: 759_680, dTotal: 138_624 },
    cgan: { g: [110 * 128 * 49, 256, 128 * 64 * 16, 128, 64 * 16], d: [11 * 64 * 16, 64 * 128 * 16, 256, 128 * 49], gTotal: 822_400, dTotal: 148_864 },
  };

  test.each(all)('%s: per-layer and total counts', (name, p) => {
    const g = countParameters(p.generator);
    const d = countParameters(p.discriminator);
    expect(g.layers.map((l) => l.count)).toEqual(expected[name].g);
    expect(d.layers.map((l) => l.count)).toEqual(expected[name].d);
    expect(g.total).toBe(expected[name].gTotal);
    expect(d.total).toBe(expected[name].dTotal);
  });

  test('layer entries: path, type, tensor shapes', () => {
    const g = countParameters(presets.vanilla.generator);
    expect(g.layers[0]).toEqual({
      path: '0',
      type: 'Linear',
      tensors: [
        { name: '0.weight', shape: [256, 100] },
        { name: '0.bias', shape: [256] },
      ],
      count: 25_856,
    });
    expect(g.layers.map((l) => l.path)).toEqual(['0', '2', '4', '6']);
    const bn = countParameters(presets.ganist.generator).layers[1];
    expect(bn).toEqual({
      path: '0.1',
      type: 'BatchNorm1d',
      tensors: [
        { name: '0.1.weight', shape: [128] },
        { name: '0.1.bias', shape: [128] },
      ],
      count: 256,
    });
  });

  test('bias: false and a bare root module', () => {
    expect(countParameters({ type: 'Linear', inFeatures: 3, outFeatures: 2, bias: false })).toEqual({
      layers: [{ path: '', type: 'Linear', tensors: [{ name: 'weight', shape: [2, 3] }], count: 6 }],
      total: 6,
    });
    expect(countParameters({ type: 'Sequential', children: [{ type: 'ReLU' }] })).toEqual({ layers: [], total: 0 });
  });

  const py = findPython(['torch']);
  (py ? test : test.skip)('names, shapes and totals match PyTorch named_parameters()', () => {
    const script = `
import json, sys, torch.nn as nn
def build(s):
    t = s['type']
    if t == 'Sequential': return nn.Sequential(*[build(c) for c in s['children']])
    if t == 'Linear': return nn.Linear(s['inFeatures'], s['outFeatures'], bias=s.get('bias', True))
    if t == 'BatchNorm1d': return nn.BatchNorm1d(s['numFeatures'])
    if t == 'LeakyReLU': return nn.LeakyReLU(s.get('negativeSlope', 0.01))
    if t == 'Dropout': return nn.Dropout(s.get('p', 0.5))
    return getattr(nn, t)()
out = {}
for name, spec in json.load(sys.stdin).items():
    m = build(spec)
    out[name] = [[n, list(p.shape)] for n, p in m.named_parameters()]
print(json.dumps(out))
`;
    const specs: Record<string, ModuleSpec> = {};
    for (const [name, p] of all) {
      specs[`${name}.G`] = p.generator;
      specs[`${name}.D`] = p.discriminator;
    }
    const torch = JSON.parse(runPython(py!, ['-c', script], { input: JSON.stringify(specs) })) as Record<string, [string, number[]][]>;
    for (const [key, spec] of Object.entries(specs)) {
      const ours = countParameters(spec).layers.flatMap((l) => l.tensors.map((t) => [t.name, t.shape]));
      expect([key, ours]).toEqual([key, torch[key]]);
    }
  });
});

describe('withZDim', () => {
  test('rewrites G first Linear, noise dim and zDim together, leaving the input untouched', () => {
    const v = withZDim(presets.vanilla, 64);
    expect(v.zDim).toBe(64);
    expect(v.step.noise.dim).toBe(64);
    expect(linears(v.generator)[0]).toEqual({ type: 'Linear', inFeatures: 64, outFeatures: 256 });
    expect(countParameters(v.generator).total).toBe(1_486_352 - 36 * 256);
    expect(v.discriminator).toEqual(presets.vanilla.discriminator);
    expect(presets.vanilla.zDim).toBe(100);
    expect(linears(presets.vanilla.generator)[0].inFeatures).toBe(100);
  });

  test('reaches into nested blocks (ganist)', () => {
    const g = withZDim(presets.ganist, 32);
    expect(countParameters(g.generator).layers[0].tensors[0]).toEqual({ name: '0.0.weight', shape: [128, 32] });
    expect(g.step.noise).toEqual({ dist: 'normal', dim: 32 });
  });

  test('keeps uniform noise bounds (seed000)', () => {
    expect(withZDim(presets.seed000, 10).step.noise).toEqual({ dist: 'uniform', dim: 10, low: -1, high: 1 });
  });

  test('rejects non-positive or fractional sizes', () => {
    expect(() => withZDim(presets.vanilla, 0)).toThrow(new RangeError('zDim: expected an integer >= 1, got 0'));
    expect(() => withZDim(presets.vanilla, 2.5)).toThrow('zDim: expected an integer >= 1, got 2.5');
  });
});
