/**
 * The convolutional presets: pytorch/examples' DCGAN (dcgan/main.py) scaled to the image size, and its
 * class-conditional form. Sizes: 28 (MNIST: G grows a 7x7 base through two up-sampling blocks, D
 * mirrors it), 32 and 64 (a 4x4 base, one more block per doubling; 64 is pytorch/examples' own network
 * with ngf = ndf = 64). Channel widths double per block from 64 at the image, as there.
 */
import { type ModuleSpec } from '../../nn/spec';
import { type Preset } from './index';

/** The image sizes the DCGAN presets build networks for. */
export const DCGAN_SIZES = [28, 32, 64] as const;

export interface ConvShape {
  /** 1 (grayscale) or 3 (RGB). */
  channels: number;
  /** Square side in pixels: 28, 32 or 64. */
  size: number;
}

const Z_DIM = 100;
const WIDTH = 64; // ngf = ndf

/** The checks shared by every shape-dependent preset; names the bad value and what is supported. */
export function checkConvShape(shape: ConvShape, who: string): void {
  if (!(DCGAN_SIZES as readonly number[]).includes(shape.size))
    throw new RangeError(
      `${who}: image size ${shape.size} is not supported; the DCGAN networks are built for ${DCGAN_SIZES.join(', ')} pixels (images are resized to it)`,
    );
  if (shape.channels !== 1 && shape.channels !== 3)
    throw new RangeError(`${who}: ${shape.channels} channels are not supported; expected 1 (grayscale) or 3 (RGB)`);
}

/** G and D for `shape`; `classes` one-hot planes widen G's and D's first layer (0: unconditional). */
export function dcganModels(shape: ConvShape, classes = 0): { generator: ModuleSpec; discriminator: ModuleSpec } {
  checkConvShape(shape, 'dcgan');
  const base = shape.size === 28 ? 7 : 4;
  const blocks = Math.round(Math.log2(shape.size / base));
  const widths = Array.from({ length: blocks }, (_, i) => WIDTH * 2 ** (blocks - 1 - i)); // 28: [128, 64]
  // bias=False throughout, as pytorch/examples (BatchNorm follows every inner layer)
  const layer =
    (type: 'Conv2d' | 'ConvTranspose2d') =>
    (inChannels: number, outChannels: number, kernelSize: number, stride: number, padding: number): ModuleSpec => ({
      type,
      inChannels,
      outChannels,
      kernelSize,
      stride,
      padding,
      bias: false,
    });
  const convT = layer('ConvTranspose2d');
  const conv = layer('Conv2d');
  const bn = (numFeatures: number): ModuleSpec => ({ type: 'BatchNorm2d', numFeatures });
  const g: ModuleSpec[] = [convT(Z_DIM + classes, widths[0], base, 1, 0), bn(widths[0]), { type: 'ReLU' }];
  for (let i = 1; i < blocks; i++) g.push(convT(widths[i - 1], widths[i], 4, 2, 1), bn(widths[i]), { type: 'ReLU' });
  g.push(convT(widths[blocks - 1], shape.channels, 4, 2, 1), { type: 'Tanh' });
  const dw = [...widths].reverse(); // 28: [64, 128]
  const d: ModuleSpec[] = [conv(shape.channels + classes, dw[0], 4, 2, 1), { type: 'LeakyReLU', negativeSlope: 0.2 }];
  for (let i = 1; i < blocks; i++) d.push(conv(dw[i - 1], dw[i], 4, 2, 1), bn(dw[i]), { type: 'LeakyReLU', negativeSlope: 0.2 });
  d.push(conv(dw[blocks - 1], 1, base, 1, 0), { type: 'Flatten' });
  return { generator: { type: 'Sequential', children: g }, discriminator: { type: 'Sequential', children: d } };
}

/** The dcgan preset (classes 0) or the cgan preset (classes 10) for `shape`. */
export function dcganPreset(shape: ConvShape = { channels: 1, size: 28 }, classes = 0): Preset {
  const conditional = classes > 0;
  const size = `${shape.size}x${shape.size}${shape.channels === 3 ? ' RGB' : ''}`;
  return {
    name: conditional ? 'cgan' : 'dcgan',
    seed: null,
    description: conditional
      ? `Conditional DCGAN (${size}): the dcgan preset with the label's one-hot vector concatenated to z and as ${classes} constant planes to D's input; ` +
        'real batches carry their labels, G draws its labels uniformly; batch 64 (twice the updates per epoch: recognizable digits of every class ' +
        'after one MNIST epoch, about 70 s on 2 CPU cores); sample({ labels }) draws the digit asked for.'
      : `pytorch/examples' DCGAN scaled to ${size}: ConvTranspose2d/BatchNorm2d/ReLU G from z ~ N(0,1) [100,1,1] to Tanh, Conv2d/BatchNorm2d/LeakyReLU(0.2) D to one logit, ` +
        'BCEWithLogits, Adam 2e-4 betas (0.5, 0.999), batch 128, conv weights N(0, 0.02), BatchNorm weights N(1, 0.02) and biases 0.',
    differsFromReadme: conditional
      ? 'Not a seed: extends the dcgan preset with one-hot conditioning (ts/gan/step-spec.ts ConditioningSpec says why one-hot).'
      : "Not a seed: dcgan/main.py's step as written (D: real backward, then fake.detach() backward; G reuses D's fake batch), its 64-pixel network scaled to this size.",
    ...dcganModels(shape, classes),
    step: {
      loss: 'bceWithLogits',
      realLabel: 1,
      fakeLabel: 0,
      dLossReduction: 'sum',
      detachFakeForD: true,
      gNoise: 'reuse',
      separateDBackward: true,
      noise: { dist: 'normal', dim: Z_DIM, shape: [Z_DIM, 1, 1] },
      ...(conditional ? { conditioning: { classes } } : {}),
    },
    optimizer: { type: 'adam', lr: 2e-4, betas: [0.5, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false },
    batchSize: conditional ? 64 : 128,
    epochs: 5,
    zDim: Z_DIM,
    normalize: '[-1,1]',
    init: 'dcgan',
    image: { ...shape },
  };
}
