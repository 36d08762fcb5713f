import { type ModuleSpec } from '../../ts/nn/spec';
import {
  adaptPreset,
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
// the five seed scripts' MLPs (dcgan and cgan have tests of their own below)
const seeds = all.filter(([, p]) => p.seed !== null);

describe('preset table', () => {
  test('five seed presets, one per seed, then dcgan and cgan; cgan is the default', () => {
    expect([...PRESET_NAMES]).toEqual(['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla', 'dcgan', 'cgan', 'sngan', 'wgan-gp']);
    expect(PRESET_NAMES.map((n) => presets[n].seed)).toEqual(['000', '001', '002', '003', '004', null, null, null, null]);
    expect(DEFAULT_PRESET).toBe('cgan');
    for (const [name, p] of all) expect(p.name).toBe(name);
  });

  test.each(all)('%s: one-line description and differsFromReadme', (_, p) => {
    for (const s of [p.description, p.differsFromReadme]) {
      expect(s.length).toBeGreaterThan(20);
      expect(s).not.toMatch(/\n/);
    }
  });

  test.each(seeds)('%s: Linear sizes chain in G and D; G ends in 784, D in 1', (_, p) => {
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
    for (const [, p] of seeds) {
      expect(p.optimizer).toEqual({ type: 'adam', lr: p.optimizer.lr, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
      expect(p.image).toEqual({ channels: 1, size: 28 });
      expect(p.init).toBeUndefined();
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
    expect(seeds.filter(([, p]) => p.step.realLabel !== 1).map(([n]) => n)).toEqual(['udacity']);
    expect(seeds.filter(([, p]) => !p.step.detachFakeForD).map(([n]) => n)).toEqual(['tensorboard']);
    expect(seeds.filter(([, p]) => p.step.separateDBackward).map(([n]) => n)).toEqual(['vanilla']);
    expect(seeds.filter(([, p]) => p.normalize === '[0,1]').map(([n]) => n)).toEqual(['ganist']);
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
    expect(() => getPreset('nope')).toThrow(
      new Error('unknown preset "nope"; valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp'),
    );
    expect(() => getPreset('tensorbord')).toThrow(
      'unknown preset "tensorbord" (did you mean "tensorboard"?); valid presets: seed000, udacity, ganist, tensorboard, vanilla, dcgan, cgan, sngan, wgan-gp',
    );
    expect(() => getPreset('toString')).toThrow(/unknown preset "toString"/);
  });
});

describe('dcgan and cgan', () => {
  const show = (spec: ModuleSpec) =>
    namedLayers(spec).map(({ path, spec: s }) => {
      if (s.type === 'ConvTranspose2d' || s.type === 'Conv2d')
        return `${path} ${s.type}(${s.inChannels}, ${s.outChannels}, ${s.kernelSize}, ${s.stride}, ${s.padding}, bias=${s.bias})`;
      if (s.type === 'BatchNorm2d') return `${path} BatchNorm2d(${s.numFeatures})`;
      if (s.type === 'LeakyReLU') return `${path} LeakyReLU(${s.negativeSlope})`;
      return `${path} ${s.type}`;
    });

  test("dcgan is pytorch/examples' DCGAN scaled to 28x28, as one top-level Sequential each", () => {
    const p = presets.dcgan;
    expect(show(p.generator)).toEqual([
      '0 ConvTranspose2d(100, 128, 7, 1, 0, bias=false)',
      '1 BatchNorm2d(128)',
      '2 ReLU',
      '3 ConvTranspose2d(128, 64, 4, 2, 1, bias=false)',
      '4 BatchNorm2d(64)',
      '5 ReLU',
      '6 ConvTranspose2d(64, 1, 4, 2, 1, bias=false)',
      '7 Tanh',
    ]);
    expect(show(p.discriminator)).toEqual([
      '0 Conv2d(1, 64, 4, 2, 1, bias=false)',
      '1 LeakyReLU(0.2)',
      '2 Conv2d(64, 128, 4, 2, 1, bias=false)',
      '3 BatchNorm2d(128)',
      '4 LeakyReLU(0.2)',
      '5 Conv2d(128, 1, 7, 1, 0, bias=false)',
      '6 Flatten',
    ]);
    expect(p.step).toEqual({
      loss: 'bceWithLogits',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'sum',
      detachFakeForD: true,
      gNoise: 'reuse',
      separateDBackward: true,
      noise: { dist: 'normal', dim: 100, shape: [100, 1, 1] },
    });
    expect(p.optimizer).toEqual({ type: 'adam', lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false });
    expect([p.batchSize, p.zDim, p.normalize, p.init, p.image]).toEqual([128, 100, '[-1,1]', 'dcgan', { channels: 1, size: 28 }]);
  });

  test('cgan: the dcgan networks widened by 10 one-hot channels, conditioning on 10 classes, batch 64', () => {
    const p = presets.cgan;
    expect(show(p.generator)[0]).toBe('0 ConvTranspose2d(110, 128, 7, 1, 0, bias=false)');
    expect(show(p.discriminator)[0]).toBe('0 Conv2d(11, 64, 4, 2, 1, bias=false)');
    expect(show(p.generator).slice(1)).toEqual(show(presets.dcgan.generator).slice(1));
    expect(show(p.discriminator).slice(1)).toEqual(show(presets.dcgan.discriminator).slice(1));
    expect(p.step).toEqual({ ...presets.dcgan.step, conditioning: { classes: 10 } });
    expect(p.batchSize).toBe(64);
  });

  test.each([
    [32, 1, 4, 3],
    [64, 3, 4, 4],
  ])('adaptPreset to %i px, %i channels: a %ix%i base and one more up-sampling block per doubling', (size, channels, base, blocks) => {
    const p = adaptPreset(getPreset('cgan'), { channels, size }, 5);
    const g = namedLayers(p.generator).map((l) => l.spec);
    const convTs = g.filter((s) => s.type === 'ConvTranspose2d');
    expect(convTs).toHaveLength(blocks + 1);
    expect(convTs[0]).toMatchObject({ inChannels: 105, kernelSize: base });
    expect(convTs.at(-1)).toMatchObject({ outChannels: channels, stride: 2 });
    const convs = namedLayers(p.discriminator).flatMap((l) => (l.spec.type === 'Conv2d' ? [l.spec] : []));
    expect(convs[0].inChannels).toBe(channels + 5);
    expect(convs.at(-1)).toMatchObject({ outChannels: 1, kernelSize: base });
    expect([p.image, p.step.conditioning, p.batchSize]).toEqual([{ channels, size }, { classes: 5 }, 64]);
    // the networks really produce and read size x size images
    const spatial = (n: number) => convTs.slice(1).reduce((s) => s * 2, base) === n;
    expect(spatial(size)).toBe(true);
  });

  test('adaptPreset: unsupported sizes, channels and seed presets say what is supported', () => {
    expect(() => adaptPreset(getPreset('dcgan'), { channels: 1, size: 48 })).toThrow(
      'dcgan: image size 48 is not supported; the DCGAN networks are built for 28, 32, 64 pixels (images are resized to it)',
    );
    expect(() => adaptPreset(getPreset('dcgan'), { channels: 2, size: 32 })).toThrow('2 channels are not supported; expected 1 (grayscale) or 3 (RGB)');
    expect(() => adaptPreset(getPreset('vanilla'), { channels: 3, size: 32 })).toThrow(
      /preset vanilla trains on 1 x 28 x 28 images .*use a convolutional preset \(dcgan, cgan, sngan, wgan-gp\)/,
    );
    expect(() => adaptPreset(getPreset('cgan'), { channels: 1, size: 28 }, 0)).toThrow(/conditional and needs images of at least 2 classes/);
    expect(adaptPreset(getPreset('dcgan'), { channels: 1, size: 28 })).toEqual(getPreset('dcgan'));
  });

  test('withZDim on a convolutional G rewrites its first ConvTranspose2d and the noise shape, keeping the one-hot width', () => {
    const p = withZDim(getPreset('cgan'), 64);
    expect(namedLayers(p.generator)[0].spec).toMatchObject({ type: 'ConvTranspose2d', inChannels: 74 });
    expect(p.step.noise).toEqual({ dist: 'normal', dim: 64, shape: [64, 1, 1] });
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
    // Linear to 7x7x256, BatchNorm1d, two ConvTranspose2d blocks and a 3x3 Conv2d (biases on); D: 3x3 and 4x4 convs, a Linear
    sngan: {
      g: [128 * 12544 + 12544, 2 * 12544, 256 * 128 * 16 + 128, 256, 128 * 64 * 16 + 64, 128, 64 * 9 + 1],
      d: [64 * 9 + 64, 64 * 128 * 16 + 128, 128 * 128 * 9 + 128, 128 * 256 * 16 + 256, 256 * 256 * 9 + 256, 12544 + 1],
      gTotal: 2_299_777,
      dTotal: 1_406_593,
    },
    // dcgan's G; its D without BatchNorm2d
    'wgan-gp': { g: [100 * 128 * 49, 256, 128 * 64 * 16, 128, 64 * 16], d: [64 * 16, 64 * 128 * 16, 128 * 49], gTotal: 759_680, dTotal: 138_368 },
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
    m = build_layer(s)
    return nn.utils.parametrizations.spectral_norm(m) if s.get('spectralNorm') else m
def build_layer(s):
    t = s['type']
    if t == 'Sequential': return nn.Sequential(*[build(c) for c in s['children']])
    if t == 'Linear': return nn.Linear(s['inFeatures'], s['outFeatures'], bias=s.get('bias', True))
    if t == 'BatchNorm1d': return nn.BatchNorm1d(s['numFeatures'])
    if t == 'BatchNorm2d': return nn.BatchNorm2d(s['numFeatures'])
    if t == 'Conv2d': return nn.Conv2d(s['inChannels'], s['outChannels'], s['kernelSize'], s.get('stride', 1), s.get('padding', 0), bias=s.get('bias', True))
    if t == 'ConvTranspose2d': return nn.ConvTranspose2d(s['inChannels'], s['outChannels'], s['kernelSize'], s.get('stride', 1), s.get('padding', 0), bias=s.get('bias', True))
    if t == 'LeakyReLU': return nn.LeakyReLU(s.get('negativeSlope', 0.01))
    if t == 'Dropout': return nn.Dropout(s.get('p', 0.5))
    if t == 'Unflatten': return nn.Unflatten(s['dim'], tuple(s['unflattenedSize']))
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
