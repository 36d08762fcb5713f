/**
 * Images from a generator: noise as the preset draws it (then a conditional preset's labels), G in eval
 * mode without autograd, and a PNG grid writer. Drawing with a seed leaves the global RNG as it was.
 */
import { saveImageGrid, type GridImage } from '../logging/grid';
import { type Module } from '../nn/module';
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type PixelRange } from '../util/pixels';
import { drawLabels, labelsFor, withOneHot } from './condition';
import { type GanStep } from './gan-step';
import { noise, randomSeed, withRngState } from './noise';
import { imagesShape, type Preset } from './presets';

export interface Samples {
  /** count * C * H * W pixels, image after image, in the preset's range ('[-1,1]' for Tanh generators). */
  images: Float32Array;
  /** [count, H, W] for grayscale (MNIST: [count, 28, 28]), [count, C, H, W] for RGB. */
  shape: number[];
  /** The class of each image (conditional generators), else absent. */
  labels?: number[];
  range: PixelRange;
  /** The seed the noise was drawn with. */
  seed: number;
  /** Drawn by the EMA of G (a run whose step spec keeps one). */
  ema?: boolean;
}

/**
 * Runs G on noise `z` (moved to `device`; a conditional G: with `labels`' one-hot vectors appended, as
 * in training) in eval mode without autograd and returns the images as a Float32Array on the CPU.
 * G's training mode is restored afterwards.
 */
export function generate(generator: Module, z: Tensor, device: Device = 'cpu', labels?: { y: Tensor; classes: number }): Float32Array {
  const wasTraining = generator.training;
  generator.eval();
  try {
    return torch.scope(() =>
      torch.noGrad(() => {
        let x = z.device === device ? z : z.to(device);
        if (labels) x = withOneHot(x, labels.y.to(device), labels.classes);
        return generator.forward(x).to('cpu').toFloat32Array();
      }),
    );
  } finally {
    generator.train(wasTraining);
  }
}

/**
 * `n` images from a training GanStep (its G in eval mode, on its training thread) with the preset's
 * noise drawn from `seed` (default: a random one); a conditional preset's labels as given (one class
 * for all, or one per image) or drawn uniformly after the noise. Never advances the global generator.
 */
export function sampleWith(
  gan: GanStep,
  preset: Preset,
  n: number,
  opts: { seed?: number; labels?: number | readonly number[]; truncation?: number } = {},
): Samples {
  const seed = opts.seed ?? randomSeed();
  return torch.scope(() => {
    const { z, y } = seededInputs(preset, n, seed, opts.labels, opts.truncation);
    return samplesOf(preset, gan.generate(z, y).to('cpu').toFloat32Array(), n, seed, y);
  });
}

/**
 * G's inputs for n images: the preset's noise from `seed`, then (conditional presets) the labels as
 * given or drawn uniformly after the noise, as the step draws G's. With `truncation` (normal noise
 * only), the noise is truncated to [-truncation, truncation] (see noise()). The global generators are
 * left as they were.
 */
export function seededInputs(preset: Preset, n: number, seed: number, given?: number | readonly number[], truncation?: number): { z: Tensor; y?: Tensor } {
  const classes = preset.step.conditioning?.classes ?? 0;
  const y = given !== undefined ? labelsFor(given, n, classes, 'sample') : undefined;
  return withRngState(() => {
    torch.manualSeed(seed);
    const z = noise(preset.step.noise, n, { truncation });
    return { z, y: y ?? (classes ? drawLabels(classes, n) : undefined) };
  });
}

export function samplesOf(preset: Preset, images: Float32Array, n: number, seed: number, y?: Tensor): Samples {
  const labels = y ? Array.from(y.toTypedArray() as BigInt64Array, Number) : undefined;
  return { images, shape: imagesShape(preset.image, n), range: preset.normalize, seed, ...(labels ? { labels } : {}) };
}

/**
 * Writes samples as a PNG grid (torchvision's make_grid layout, `nrow` images per row, default 8),
 * atomically. Returns the grid written.
 */
export function saveSamples(file: string, samples: Pick<Samples, 'images' | 'shape' | 'range'>, opts: { nrow?: number; padding?: number } = {}): GridImage {
  return saveImageGrid(file, { data: samples.images, shape: samples.shape }, { nrow: opts.nrow ?? 8, padding: opts.padding ?? 2, range: samples.range });
}
