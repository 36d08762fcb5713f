/**
 * The recipe presets (issue 25): `sngan` (Miyato et al. 2018: the paper's standard CNN, spectral norm on
 * every layer of D, hinge loss) and `wgan-gp` (Gulrajani et al. 2017: a Wasserstein critic with the
 * gradient penalty, weight 10, five critic updates per G update), each for the image sizes dcgan
 * supports and, with `classes`, class-conditional by one-hot conditioning as cgan.
 */
import { type ModuleSpec } from '../../nn/spec';
import { checkConvShape, type ConvShape, dcganModels } from './dcgan';
import { type Preset } from './index';

/** The step both recipes' presets build on: no labels (hinge, Wasserstein), one backward of real + fake, fresh noise for G. */
const UNLABELLED_STEP = { realLabel: 1, fakeLabel: 0, dLossReduction: 'sum', detachFakeForD: true, gNoise: 'fresh', separateDBackward: false } as const;
const sizeName = (s: ConvShape) => `${s.size}x${s.size}${s.channels === 3 ? ' RGB' : ''}`;
const adam = (lr: number, betas: [number, number]) => ({ type: 'adam' as const, lr, betas, eps: 1e-8, weightDecay: 0, amsgrad: false });

/**
 * SNGAN's standard CNN (the paper's Table 3, chainer-gan-lib's DCGANGenerator / SNDCGANDiscriminator),
 * scaled as dcgan: a base of 7x7 (28) or 4x4 (32, 64) pixels and one up-sampling block per doubling.
 * G: Linear(z -> base^2 x ch), BatchNorm1d, ReLU, reshape, then per block ConvTranspose2d(4, 2, 1)
 * halving the channels, BatchNorm2d, ReLU, and a 3x3 Conv2d to the image, Tanh (ch = 64 x 2^blocks, at most
 * 512: the paper's 512 at 32 pixels). D: per block a 3x3 and a 4x4 stride-2 Conv2d (64 channels at the
 * image, doubling), LeakyReLU(0.1), a last 3x3 Conv2d and a Linear to one output, each spectral-normed.
 */
export function snganModels(shape: ConvShape, classes = 0, zDim = 128): { generator: ModuleSpec; discriminator: ModuleSpec } {
  checkConvShape(shape, 'sngan');
  const base = shape.size === 28 ? 7 : 4;
  const blocks = Math.round(Math.log2(shape.size / base));
  const ch = Math.min(512, 64 * 2 ** blocks);
  const conv = (inChannels: number, outChannels: number, kernelSize: number, stride: number, padding: number, sn = false): ModuleSpec => ({
    type: 'Conv2d',
    inChannels,
    outChannels,
    kernelSize,
    stride,
    padding,
    ...(sn ? { spectralNorm: true } : {}),
  });
  const g: ModuleSpec[] = [
    { type: 'Linear', inFeatures: zDim + classes, outFeatures: base * base * ch },
    { type: 'BatchNorm1d', numFeatures: base * base * ch },
    { type: 'ReLU' },
    { type: 'Unflatten', dim: 1, unflattenedSize: [ch, base, base] },
  ];
  let c = ch;
  for (let i = 0; i < blocks; i++) {
    g.push(
      { type: 'ConvTranspose2d', inChannels: c, outChannels: c / 2, kernelSize: 4, stride: 2, padding: 1 },
      { type: 'BatchNorm2d', numFeatures: c / 2 },
      { type: 'ReLU' },
    );
    c /= 2;
  }
  g.push(conv(c, shape.channels, 3, 1, 1), { type: 'Tanh' });
  const lrelu: ModuleSpec = { type: 'LeakyReLU', negativeSlope: 0.1 };
  const d: ModuleSpec[] = [];
  let w = 64;
  let inC = shape.channels + classes;
  for (let i = 0; i < blocks; i++) {
    d.push(conv(inC, w, 3, 1, 1, true), lrelu, conv(w, w * 2, 4, 2, 1, true), lrelu);
    inC = w * 2;
    w *= 2;
  }
  d.push(conv(inC, inC, 3, 1, 1, true), lrelu, { type: 'Flatten' }, { type: 'Linear', inFeatures: base * base * inC, outFeatures: 1, spectralNorm: true });
  return { generator: { type: 'Sequential', children: g }, discriminator: { type: 'Sequential', children: d } };
}

/** The sngan preset for `shape` (classes > 0: conditional). */
export function snganPreset(shape: ConvShape = { channels: 1, size: 28 }, classes = 0): Preset {
  const zDim = 128;
  return {
    name: 'sngan',
    seed: null,
    description:
      `SNGAN (${sizeName(shape)}${classes ? `, conditional on ${classes} classes` : ''}): the paper's standard CNN, spectral norm on every layer of D, ` +
      "hinge loss, z ~ N(0, 1) of 128, Adam 2e-4 betas (0.5, 0.999), one D update per G update (the paper's setting C), batch 64.",
    differsFromReadme: "Not a seed: Miyato et al. 2018's standard CNN scaled as dcgan (7x7 base at 28 pixels), PyTorch's default init.",
    ...snganModels(shape, classes, zDim),
    step: {
      loss: 'hinge',
      ...UNLABELLED_STEP,
      noise: { dist: 'normal', dim: zDim },
      ...(classes ? { conditioning: { classes } } : {}),
    },
    optimizer: adam(2e-4, [0.5, 0.999]),
    batchSize: 64,
    epochs: 5,
    zDim,
    normalize: '[-1,1]',
    image: { ...shape },
  };
}

/**
 * The wgan-gp preset for `shape` (classes > 0: conditional): dcgan's G, and dcgan's D without BatchNorm
 * (Gulrajani et al.: a penalty on each sample's gradient does not hold under batch normalization).
 */
export function wganGpPreset(shape: ConvShape = { channels: 1, size: 28 }, classes = 0): Preset {
  const { generator, discriminator } = dcganModels(shape, classes);
  if (discriminator.type !== 'Sequential') throw new Error('wgan-gp: dcgan built a D that is not a Sequential');
  const critic: ModuleSpec = { type: 'Sequential', children: discriminator.children.filter((m) => m.type !== 'BatchNorm2d') };
  return {
    name: 'wgan-gp',
    seed: null,
    description:
      `WGAN-GP (${sizeName(shape)}${classes ? `, conditional on ${classes} classes` : ''}): dcgan's G, its D without BatchNorm as the critic, ` +
      'Wasserstein loss with the gradient penalty (weight 10), five critic updates per G update, Adam 1e-4 betas (0.5, 0.9), batch 64.',
    differsFromReadme: "Not a seed: Gulrajani et al. 2017's recipe (their MNIST settings) on the dcgan networks, PyTorch's default init.",
    generator,
    discriminator: critic,
    step: {
      loss: 'wasserstein',
      ...UNLABELLED_STEP,
      noise: { dist: 'normal', dim: 100, shape: [100, 1, 1] },
      ...(classes ? { conditioning: { classes } } : {}),
      penalty: { type: 'wgan-gp', weight: 10 },
      dSteps: 5,
    },
    optimizer: adam(1e-4, [0.5, 0.9]),
    batchSize: 64,
    epochs: 5,
    zDim: 100,
    normalize: '[-1,1]',
    image: { ...shape },
  };
}
