/**
 * The five MNIST GAN "seed" scripts, reproduced as presets: architecture (as plain ModuleSpec data),
 * training-step variant (GanStepSpec), optimizer and the scripts' hyper-parameters, as the code was
 * actually trained (which is not always what the scripts' READMEs say; see `differsFromReadme`).
 *
 * Every generator and discriminator is a top-level `Sequential`, so parameter names follow PyTorch's
 * state-dict naming (`0.weight`, `0.bias`, ...; ganist's nested blocks give `0.0.weight`,
 * `0.1.running_mean`, `4.weight`).
 */
import { type ModuleSpec, parameterShapes } from '../../nn/spec';
import { type PixelRange } from '../../util/pixels';
import { suggest } from '../../util/suggest';
import { type ConvShape, dcganPreset } from './dcgan';
import { snganPreset, wganGpPreset } from './recipes';
import { type GanStepSpec } from '../step-spec';

/** Side length of the (square, single-channel) images the presets generate. */
export const IMAGE_SIDE = 28;

/** Weight re-initialization a preset may name (applied by weights-init.ts): 'dcgan' is pytorch/examples' weights_init. */
export type InitScheme = 'dcgan';

export type PresetName = 'seed000' | 'udacity' | 'ganist' | 'tensorboard' | 'vanilla' | 'dcgan' | 'cgan' | 'sngan' | 'wgan-gp';

/** A preset's Adam, as stored in config.json (the constructor's options are optim.AdamOptions). */
export interface AdamSpec {
  type: 'adam';
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
}

/** A preset's SGD, as stored in config.json (the constructor's options are optim.SGDOptions). */
export interface SGDSpec {
  type: 'sgd';
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export type OptimizerSpec = AdamSpec | SGDSpec;

export interface Preset {
  name: PresetName;
  /** The seed script this preset reproduces (null: not a seed; dcgan and cgan follow pytorch/examples). */
  seed: '000' | '001' | '002' | '003' | '004' | null;
  /** One line: what the preset is, including the choices made where the script was silent. */
  description: string;
  /** One line: where the code as trained differs from (or goes beyond) its README. */
  differsFromReadme: string;
  generator: ModuleSpec;
  discriminator: ModuleSpec;
  step: GanStepSpec;
  /** The same optimizer settings are used for G and D (every seed does so). */
  optimizer: OptimizerSpec;
  batchSize: number;
  epochs: number;
  /** Noise dimension; always equal to `step.noise.dim` and to G's first Linear's inFeatures. */
  zDim: number;
  /** Pixel range of the training images: '[-1,1]' is (x - 0.5) / 0.5, '[0,1]' is ToTensor() only. */
  normalize: PixelRange;
  /** Re-initialization after the modules' default init (weights-init.ts); absent: PyTorch's defaults. */
  init?: InitScheme;
  /** The images G draws and D reads: channels and square side (the MLP seeds: 1 x 28 x 28, flattened). */
  image: ConvShape;
}

/** Flattened MNIST image size (1 x 28 x 28). */
export const IMAGE_FEATURES = 784;

/**
 * The default: the conditional DCGAN, which draws recognizable digits of every class after one epoch
 * (about 70 s on 2 CPU cores through the CLI, measured 2026-12-07; two epochs draw them cleanly), where the MLP seeds need tens of epochs.
 */
export const DEFAULT_PRESET: PresetName = 'cgan';

// ---------------------------------------------------------------------------------------------
// Spec builders (module-private)

const linear = (inFeatures: number, outFeatures: number): ModuleSpec => ({ type: 'Linear', inFeatures, outFeatures });
const relu = (): ModuleSpec => ({ type: 'ReLU' });
const leaky = (negativeSlope: number): ModuleSpec => ({ type: 'LeakyReLU', negativeSlope });
const dropout = (p: number): ModuleSpec => ({ type: 'Dropout', p });
const tanh = (): ModuleSpec => ({ type: 'Tanh' });
const sigmoid = (): ModuleSpec => ({ type: 'Sigmoid' });
const seq = (...children: ModuleSpec[]): ModuleSpec => ({ type: 'Sequential', children });

/** Linear layers through `sizes`, each hidden one followed by `hidden()` modules, then `out` modules. */
function mlp(sizes: number[], hidden: () => ModuleSpec[], out: ModuleSpec[]): ModuleSpec {
  const children: ModuleSpec[] = [];
  for (let i = 0; i + 1 < sizes.length; i++) {
    children.push(linear(sizes[i], sizes[i + 1]));
    children.push(...(i + 2 < sizes.length ? hidden() : out));
  }
  return seq(...children);
}

const adam = (lr: number): AdamSpec => ({
  type: 'adam',
  lr,
  betas: [0.9, 0.999], // torch.optim.Adam's defaults; no seed passes betas
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
});

const standardStep = (overrides: Partial<GanStepSpec> & Pick<GanStepSpec, 'loss' | 'noise'>): GanStepSpec => ({
  realLabel: 1,
  fakeLabel: 0,
  dLossReduction: 'sum',
  detachFakeForD: true,
  gNoise: 'fresh',
  separateDBackward: false,
  ...overrides,
});

// ---------------------------------------------------------------------------------------------
// The presets

const seed000: Preset = {
  name: 'seed000',
  seed: '000',
  description:
    'Seed 000: MLP GAN, G 128-1024-1024-784 ReLU/Tanh, D 784-256-256-1 LeakyReLU(0.2)/Sigmoid + BCELoss, ' +
    'z ~ U[-1,1) dim 128, Adam lr 2e-4 betas (0.9,0.999), batch 16; chosen where silent: 100 epochs, D loss real+fake, fresh noise for G.',
  differsFromReadme:
    'README gives no layer sizes, batch size or noise and says "three" verbose levels while listing four (0-3); code trains the sizes above with Sigmoid + BCELoss.',
  generator: mlp([128, 1024, 1024, IMAGE_FEATURES], () => [relu()], [tanh()]),
  discriminator: mlp([IMAGE_FEATURES, 256, 256, 1], () => [leaky(0.2)], [sigmoid()]),
  step: standardStep({ loss: 'bce', noise: { dist: 'uniform', dim: 128, low: -1, high: 1 } }),
  optimizer: adam(2e-4),
  batchSize: 16,
  epochs: 100,
  zDim: 128,
  normalize: '[-1,1]',
  image: { channels: 1, size: IMAGE_SIDE },
};

const udacity: Preset = {
  name: 'udacity',
  seed: '001',
  description:
    'Seed 001 (Udacity): G 100-32-64-128-784 and D 784-128-64-32-1, hidden LeakyReLU(0.2)+Dropout(0.3), G Tanh, D logits + BCEWithLogits, ' +
    'real labels 0.9, D loss real+fake, z ~ U[-1,1] dim 100, Adam lr 2e-3 betas (0.9,0.999), batch 64, 100 epochs (chosen: the notebook default).',
  differsFromReadme:
    'README says D has a sigmoid output, but D outputs logits (the sigmoid is inside BCEWithLogitsLoss); README omits Dropout(0.3) and real-label smoothing to 0.9.',
  generator: mlp([100, 32, 64, 128, IMAGE_FEATURES], () => [leaky(0.2), dropout(0.3)], [tanh()]),
  discriminator: mlp([IMAGE_FEATURES, 128, 64, 32, 1], () => [leaky(0.2), dropout(0.3)], []),
  step: standardStep({ loss: 'bceWithLogits', realLabel: 0.9, noise: { dist: 'uniform', dim: 100, low: -1, high: 1 } }),
  optimizer: adam(2e-3),
  batchSize: 64,
  epochs: 100,
  zDim: 100,
  normalize: '[-1,1]',
  image: { channels: 1, size: IMAGE_SIDE },
};

const ganistBlock = (i: number, o: number): ModuleSpec => seq(linear(i, o), { type: 'BatchNorm1d', numFeatures: o }, relu());
const ganistDBlock = (i: number, o: number): ModuleSpec => seq(linear(i, o), leaky(0.2));

const ganist: Preset = {
  name: 'ganist',
  seed: '002',
  description:
    'Seed 002 (GANIST): G blocks Linear+BatchNorm1d+ReLU 10-128-256-512-1024 then Linear(1024,784)+Sigmoid, D blocks Linear+LeakyReLU(0.2) 784-512-256-128 then Linear(128,1) logits, ' +
    'BCEWithLogits, D loss (real+fake)/2, z ~ N(0,1) dim 10, Adam lr 1e-5 betas (0.9,0.999), batch 128, images in [0,1], 200 epochs (chosen).',
  differsFromReadme:
    'README\'s "5 layered" G is 4 Linear+BatchNorm1d+ReLU blocks plus Linear+Sigmoid (BatchNorm and the Sigmoid into [0,1] images are unmentioned); README gives no sizes, lr 1e-5 or z dim 10.',
  generator: seq(ganistBlock(10, 128), ganistBlock(128, 256), ganistBlock(256, 512), ganistBlock(512, 1024), linear(1024, IMAGE_FEATURES), sigmoid()),
  discriminator: seq(ganistDBlock(IMAGE_FEATURES, 512), ganistDBlock(512, 256), ganistDBlock(256, 128), linear(128, 1)),
  step: standardStep({ loss: 'bceWithLogits', dLossReduction: 'mean', noise: { dist: 'normal', dim: 10 } }),
  optimizer: adam(1e-5),
  batchSize: 128,
  epochs: 200,
  zDim: 10,
  normalize: '[0,1]',
  image: { channels: 1, size: IMAGE_SIDE },
};

const tensorboard: Preset = {
  name: 'tensorboard',
  seed: '003',
  description:
    'Seed 003 (TensorBoard): G 100-256-512-1024-784 ReLU/Tanh, D 784-1024-512-256-1 ReLU,ReLU,LeakyReLU(0.1) each + Dropout(0.2), Sigmoid + BCELoss, ' +
    'D loss (real+fake)/2 with fake not detached, G reuses that fake batch, Adam lr 3e-4 betas (0.9,0.999), batch 32, 50 epochs, z ~ N(0,1) dim 100 (chosen: randn).',
  differsFromReadme:
    "README matches on BCELoss, lr 0.0003, averaged D loss and 50 epochs, but omits that D's fake batch is not detached and is reused for G, and D's Dropout(0.2)/LeakyReLU(0.1).",
  generator: mlp([100, 256, 512, 1024, IMAGE_FEATURES], () => [relu()], [tanh()]),
  discriminator: seq(
    linear(IMAGE_FEATURES, 1024),
    relu(),
    dropout(0.2),
    linear(1024, 512),
    relu(),
    dropout(0.2),
    linear(512, 256),
    leaky(0.1),
    dropout(0.2),
    linear(256, 1),
    sigmoid(),
  ),
  step: standardStep({
    loss: 'bce',
    dLossReduction: 'mean',
    detachFakeForD: false,
    gNoise: 'reuse',
    noise: { dist: 'normal', dim: 100 },
  }),
  optimizer: adam(3e-4),
  batchSize: 32,
  epochs: 50,
  zDim: 100,
  normalize: '[-1,1]',
  image: { channels: 1, size: IMAGE_SIDE },
};

const vanilla: Preset = {
  name: 'vanilla',
  seed: '004',
  description:
    'Seed 004 (vanilla GAN, the default): G 100-256-512-1024-784 LeakyReLU(0.2)/Tanh, D 784-1024-512-256-1 LeakyReLU(0.2)+Dropout(0.3)/Sigmoid + BCELoss, ' +
    'real and fake D losses backpropagated separately (fake detached), fresh noise for G, z ~ N(0,1) dim 100, Adam lr 2e-4 betas (0.9,0.999) (PyTorch default), batch 100, 200 epochs.',
  differsFromReadme:
    'README says the discriminator is typically a convolutional network, but both networks are fully connected MLPs; README gives no sizes, loss or optimizer settings (only 200 epochs).',
  generator: mlp([100, 256, 512, 1024, IMAGE_FEATURES], () => [leaky(0.2)], [tanh()]),
  discriminator: mlp([IMAGE_FEATURES, 1024, 512, 256, 1], () => [leaky(0.2), dropout(0.3)], [sigmoid()]),
  step: standardStep({ loss: 'bce', separateDBackward: true, noise: { dist: 'normal', dim: 100 } }),
  optimizer: adam(2e-4),
  batchSize: 100,
  epochs: 200,
  zDim: 100,
  normalize: '[-1,1]',
  image: { channels: 1, size: IMAGE_SIDE },
};

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The presets, deep-frozen. Use `getPreset` for a mutable copy. */
const dcgan: Preset = dcganPreset({ channels: 1, size: IMAGE_SIDE });
const cgan: Preset = dcganPreset({ channels: 1, size: IMAGE_SIDE }, 10);
const sngan: Preset = snganPreset({ channels: 1, size: IMAGE_SIDE });
const wganGp: Preset = wganGpPreset({ channels: 1, size: IMAGE_SIDE });

export const presets: Readonly<Record<PresetName, Preset>> = deepFreeze({
  seed000,
  udacity,
  ganist,
  tensorboard,
  vanilla,
  dcgan,
  cgan,
  sngan,
  'wgan-gp': wganGp,
});

export const PRESET_NAMES: readonly PresetName[] = Object.freeze(Object.keys(presets) as PresetName[]);

export function isPresetName(name: unknown): name is PresetName {
  return typeof name === 'string' && Object.hasOwn(presets, name);
}

/** A deep, mutable copy of the named preset. Throws an Error listing the valid names otherwise. */
export function getPreset(name: string): Preset {
  if (!isPresetName(name)) {
    const hint = suggest(name, PRESET_NAMES);
    throw new Error(`unknown preset ${JSON.stringify(name)}${hint ? ` (did you mean "${hint}"?)` : ''}; valid presets: ${PRESET_NAMES.join(', ')}`);
  }
  return structuredClone(presets[name]) as Preset;
}

// ---------------------------------------------------------------------------------------------
// Spec helpers

/** A leaf module of a spec tree together with its PyTorch-style path ('' for a non-Sequential root). */
export interface NamedLayer {
  path: string;
  spec: Exclude<ModuleSpec, { type: 'Sequential' }>;
}

/** Whether the preset's D is convolutional (reads [N, C, H, W] images; an MLP D reads them flattened). */
export function isConvolutional(preset: Pick<Preset, 'discriminator'>): boolean {
  const first = namedLayers(preset.discriminator).find((l) => l.spec.type === 'Linear' || l.spec.type === 'Conv2d');
  return first?.spec.type === 'Conv2d';
}

/** The shape of n images of the preset's kind: [n, H, W] for grayscale, [n, C, H, W] otherwise. */
export function imagesShape(image: ConvShape, n: number): number[] {
  return image.channels === 1 ? [n, image.size, image.size] : [n, image.channels, image.size, image.size];
}

/** The leaf modules of `spec` in forward order, with their state-dict prefixes ('0', '0.1', ...). */
export function namedLayers(spec: ModuleSpec, prefix = ''): NamedLayer[] {
  if (spec.type !== 'Sequential') return [{ path: prefix, spec }];
  return spec.children.flatMap((child, i) => namedLayers(child, prefix ? `${prefix}.${i}` : String(i)));
}

export interface LayerParameters {
  /** State-dict prefix of the layer, e.g. '0' or '0.1'. */
  path: string;
  type: ModuleSpec['type'];
  /** Learnable parameter tensors, named as in PyTorch's named_parameters(). */
  tensors: { name: string; shape: number[] }[];
  /** Number of learnable scalars. */
  count: number;
}

export interface ParameterCounts {
  /** Layers that hold learnable parameters, in forward order. */
  layers: LayerParameters[];
  total: number;
}

/**
 * Learnable parameter counts per layer, from each layer class's parameterShapes (nn/spec.ts; e.g.
 * Linear: in*out + out, or in*out without bias; BatchNorm: 2 * numFeatures, its running statistics
 * are buffers and not counted). For verbose level 3.
 */
export function countParameters(spec: ModuleSpec): ParameterCounts {
  const layers: LayerParameters[] = [];
  const name = (path: string, p: string) => (path ? `${path}.${p}` : p);
  for (const { path, spec: s } of namedLayers(spec)) {
    const tensors = Object.entries(parameterShapes(s)).map(([p, shape]) => ({ name: name(path, p), shape }));
    if (tensors.length === 0) continue;
    const count = tensors.reduce((acc, t) => acc + t.shape.reduce((a, b) => a * b, 1), 0);
    layers.push({ path, type: s.type, tensors, count });
  }
  return { layers, total: layers.reduce((acc, l) => acc + l.count, 0) };
}

/** The first Linear or ConvTranspose2d in forward order (depth-first): the layer that reads the noise. */
function firstNoiseLayer(spec: ModuleSpec): Extract<ModuleSpec, { type: 'Linear' | 'ConvTranspose2d' }> | undefined {
  if (spec.type === 'Linear' || spec.type === 'ConvTranspose2d') return spec;
  if (spec.type === 'Sequential') {
    for (const c of spec.children) {
      const l = firstNoiseLayer(c);
      if (l) return l;
    }
  }
  return undefined;
}

/**
 * A copy of `preset` with noise dimension `zDim`: rewrites G's first Linear's inFeatures (or first
 * ConvTranspose2d's inChannels, with the noise shape [zDim, 1, 1]), `step.noise.dim` and `zDim`
 * together; a conditional preset's one-hot width stays added. Throws a RangeError for a non-positive
 * or non-integer zDim.
 */
export function withZDim(preset: Preset, zDim: number): Preset {
  if (!Number.isSafeInteger(zDim) || zDim < 1) throw new RangeError(`zDim: expected an integer >= 1, got ${zDim}`);
  const out = structuredClone(preset) as Preset;
  const first = firstNoiseLayer(out.generator);
  if (!first) throw new Error(`preset ${preset.name}: the generator has no Linear or ConvTranspose2d layer to take the noise`);
  const classes = out.step.conditioning?.classes ?? 0;
  if (first.type === 'Linear') first.inFeatures = zDim + classes;
  else first.inChannels = zDim + classes;
  if (out.step.noise.shape) out.step.noise.shape = [zDim, ...out.step.noise.shape.slice(1)];
  out.step.noise.dim = zDim;
  out.zDim = zDim;
  return out;
}

export { adaptPreset, withClasses } from './adapt';
