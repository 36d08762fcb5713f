/**
 * Images from a trained generator: noise as the preset draws it, G in eval mode without autograd,
 * and a PNG grid writer. Drawing with a seed leaves the global RNG as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { drawLabels, labelsFor, withOneHot } from '../gan/condition';
import { noise, randomSeed, withRngState } from '../gan/noise';
import { type GanStep } from '../gan/gan-step';
import { getPreset, imagesShape, type Preset } from '../gan/presets';
import { saveImageGrid, type GridImage } from '../logging/grid';
import { fromSpec } from '../nn/from-spec';
import { type Module } from '../nn/module';
import { fitStateDict } from '../nn/state-dict-fit';
import { checkDevice, type Device, describeValue } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { loadPytorch } from '../tensor/torch-save';
import { type PixelRange } from '../util/pixels';
import { CHECKPOINT_FILES, checkFiniteWeights, checkpointFile, hasCheckpoint } from './checkpoint';
import { CheckpointError, readRunInfo } from './run-dir';

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

export interface SampleOptions {
  /** Run folder holding config.json and generator.safetensors. */
  checkpoint: string;
  /** Number of images (default 64). */
  count?: number;
  /** Noise seed; default: a random one (reported in the result). */
  seed?: number;
  /** Device to run G on (default 'cpu'). */
  device?: Device;
  /**
   * Conditional generators (cgan): the class to draw, for every image or one per image; 'all' draws
   * `count` images of each class, class after class (a grid with one row per class at nrow = count).
   * Default: classes drawn uniformly from the seed. Refused by an unconditional generator.
   */
  labels?: number | readonly number[] | 'all';
  /**
   * With a torch.save'd state_dict file as `checkpoint` (a `.pt`/`.pth` of G's weights, as the seeds save
   * it): the preset whose generator it is. Its keys may follow the script's own module names.
   */
  preset?: string;
}

const SAMPLE_KEYS = ['checkpoint', 'count', 'seed', 'device', 'labels', 'preset'] as const;
const SAMPLE_FORM =
  "{ checkpoint: string, count?: number, seed?: number, device?: 'cpu' | 'cuda' | 'cuda:N', labels?: number | number[] | 'all', preset?: string }";

/** sample()'s options with their defaults, each checked before any file is read; errors name the value. */
function checkSampleOptions(opts: unknown): Required<Omit<SampleOptions, 'seed' | 'labels' | 'preset'>> & Pick<SampleOptions, 'seed' | 'labels' | 'preset'> {
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts))
    throw new TypeError(`sample: expected options ${SAMPLE_FORM}, got ${describeValue(opts)}`);
  for (const k of Object.keys(opts)) {
    if (!(SAMPLE_KEYS as readonly string[]).includes(k)) throw new TypeError(`sample: unknown option '${k}' (expected ${SAMPLE_KEYS.join(', ')})`);
  }
  const o = opts as Record<string, unknown>;
  if (typeof o.checkpoint !== 'string' || o.checkpoint === '')
    throw new TypeError(`sample: checkpoint: expected the path of a run folder (a string), got ${describeValue(o.checkpoint)}`);
  const count = o.count ?? 64;
  if (!Number.isSafeInteger(count) || (count as number) < 1) throw new RangeError(`sample: count: expected an integer >= 1, got ${describeValue(count)}`);
  if (o.seed !== undefined && (!Number.isSafeInteger(o.seed) || (o.seed as number) < 0))
    throw new RangeError(`sample: seed: expected an integer >= 0, got ${describeValue(o.seed)}`);
  return {
    checkpoint: o.checkpoint,
    count: count as number,
    seed: o.seed as number | undefined,
    device: o.device === undefined ? 'cpu' : checkDevice(o.device, 'sample: device'),
    labels: o.labels as SampleOptions['labels'],
    preset: o.preset as string | undefined,
  };
}

/**
 * Rebuilds G from the run's config.json preset, loads generator.safetensors (verified against
 * trainer.json when there is one) and generates `count` images from seeded noise. The global
 * random generators are left as they were.
 */
export function sample(opts: SampleOptions): Samples {
  const { checkpoint: runDir, count: perLabel, seed: givenSeed, device, labels: given, preset: presetName } = checkSampleOptions(opts);
  const fromFile = fs.existsSync(runDir) && fs.statSync(runDir).isFile();
  if (fromFile && presetName === undefined)
    throw new TypeError(`sample: ${runDir} is a file: give the preset whose generator it holds (preset: 'vanilla', ...; --preset on the command line)`);
  if (!fromFile && presetName !== undefined) throw new TypeError('sample: preset applies to a torch.save file as checkpoint; a run folder has its own');
  const preset = fromFile ? getPreset(presetName!) : readRunInfo(runDir).config.preset;
  const classes = preset.step.conditioning?.classes ?? 0;
  const count = given === 'all' ? perLabel * classes : perLabel;
  const list = given === 'all' ? Array.from({ length: count }, (_, i) => Math.floor(i / perLabel)) : given;
  // checked before any weights are read: a bad label is the user's error, not the checkpoint's
  if (given === 'all' && !classes) throw new TypeError("sample: labels 'all' applies to conditional presets (cgan); this generator is not conditional");
  if (list !== undefined) labelsFor(list, count, classes, 'sample').dispose();
  const seed = givenSeed ?? randomSeed();
  const G = fromFile ? loadPytorchGenerator(runDir, preset, device) : loadGenerator(runDir, preset, device);
  try {
    return torch.scope(() => {
      const { z, y } = seededInputs(preset, count, seed, list);
      return samplesOf(preset, generate(G, z, device, y && { y, classes }), count, seed, y);
    });
  } finally {
    G.dispose();
  }
}

/**
 * G of a run folder: rebuilt from `preset` (the run's config.json) with the weights of its latest
 * checkpoint (verified against trainer.json when there is one; NaN weights refused). The global random
 * generators are left as they were (building G draws its init from them).
 */
export function loadGenerator(runDir: string, preset: Preset, device: Device): Module {
  const file = hasCheckpoint(runDir) ? checkpointFile(runDir, CHECKPOINT_FILES.generator) : path.join(runDir, CHECKPOINT_FILES.generator);
  if (!fs.existsSync(file)) throw new CheckpointError(`${runDir} has no ${CHECKPOINT_FILES.generator} (no checkpoint was written yet)`);
  return withRngState(() => {
    const G = fromSpec(preset.generator, { device });
    try {
      torch.scope(() => {
        const weights = safetensors.loadFile(file, { device });
        checkFiniteWeights(weights, file); // a diverged run's NaN weights would give blank images silently
        G.loadStateDict(weights);
      });
    } catch (e) {
      G.dispose();
      throw e;
    }
    return G;
  });
}

/** G of `preset` with the weights of a torch.save'd state_dict (keys fitted by structure, NaN refused). */
export function loadPytorchGenerator(file: string, preset: Preset, device: Device): Module {
  return withRngState(() => {
    const G = fromSpec(preset.generator, { device });
    try {
      torch.scope(() => {
        const weights = fitStateDict(loadPytorch(file, { device }), G, file);
        checkFiniteWeights(weights, file);
        G.loadStateDict(weights);
      });
    } catch (e) {
      G.dispose();
      throw e;
    }
    return G;
  });
}

/**
 * `n` images from a training GanStep (its G in eval mode, on its training thread) with the preset's
 * noise drawn from `seed` (default: a random one); a conditional preset's labels as given (one class
 * for all, or one per image) or drawn uniformly after the noise. Never advances the global generator.
 */
export function sampleWith(gan: GanStep, preset: Preset, n: number, opts: { seed?: number; labels?: number | readonly number[] } = {}): Samples {
  const seed = opts.seed ?? randomSeed();
  return torch.scope(() => {
    const { z, y } = seededInputs(preset, n, seed, opts.labels);
    return samplesOf(preset, gan.generate(z, y).to('cpu').toFloat32Array(), n, seed, y);
  });
}

/**
 * G's inputs for n images: the preset's noise from `seed`, then (conditional presets) the labels as
 * given or drawn uniformly after the noise, as the step draws G's. The global generators are left as
 * they were.
 */
export function seededInputs(preset: Preset, n: number, seed: number, given?: number | readonly number[]): { z: Tensor; y?: Tensor } {
  const classes = preset.step.conditioning?.classes ?? 0;
  const y = given !== undefined ? labelsFor(given, n, classes, 'sample') : undefined;
  return withRngState(() => {
    torch.manualSeed(seed);
    const z = noise(preset.step.noise, n);
    return { z, y: y ?? (classes ? drawLabels(classes, n) : undefined) };
  });
}

function samplesOf(preset: Preset, images: Float32Array, n: number, seed: number, y?: Tensor): Samples {
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
