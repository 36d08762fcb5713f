/**
 * Images from a trained generator: noise as the preset draws it, G in eval mode without autograd,
 * and a PNG grid writer. Drawing with a seed leaves the global RNG as it was.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { noise, randomSeed, withRngState } from '../gan/noise';
import { IMAGE_SIDE } from '../gan/presets';
import { saveImageGrid, type GridImage } from '../logging/grid';
import { fromSpec } from '../nn/from-spec';
import { type Module } from '../nn/module';
import { checkDevice, type Device, describeValue } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type PixelRange } from '../util/pixels';
import { CHECKPOINT_FILES, checkFiniteWeights, checkpointFile, hasCheckpoint } from './checkpoint';
import { CheckpointError, readRunInfo } from './run-dir';

export interface Samples {
  /** count * 784 pixels, image after image, in the preset's range ('[-1,1]' for Tanh generators). */
  images: Float32Array;
  /** [count, 28, 28] */
  shape: [number, number, number];
  range: PixelRange;
  /** The seed the noise was drawn with. */
  seed: number;
}

/**
 * Runs G on noise `z` (moved to `device`) in eval mode without autograd and returns the images as a
 * Float32Array on the CPU. G's training mode is restored afterwards.
 */
export function generate(generator: Module, z: Tensor, device: Device = 'cpu'): Float32Array {
  const wasTraining = generator.training;
  generator.eval();
  try {
    return torch.scope(() =>
      torch.noGrad(() => {
        const x = z.device === device ? z : z.to(device);
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
}

const SAMPLE_KEYS = ['checkpoint', 'count', 'seed', 'device'] as const;
const SAMPLE_FORM = "{ checkpoint: string, count?: number, seed?: number, device?: 'cpu' | 'cuda' | 'cuda:N' }";

/** sample()'s options with their defaults, each checked before any file is read; errors name the value. */
function checkSampleOptions(opts: unknown): Required<Omit<SampleOptions, 'seed'>> & { seed?: number } {
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
  };
}

/**
 * Rebuilds G from the run's config.json preset, loads generator.safetensors (verified against
 * trainer.json when there is one) and generates `count` images from seeded noise. The global
 * random generators are left as they were.
 */
export function sample(opts: SampleOptions): Samples {
  const { checkpoint: runDir, count, seed: givenSeed, device } = checkSampleOptions(opts);
  const info = readRunInfo(runDir);
  const preset = info.config.preset;
  const file = hasCheckpoint(runDir) ? checkpointFile(runDir, CHECKPOINT_FILES.generator) : path.join(runDir, CHECKPOINT_FILES.generator);
  if (!fs.existsSync(file)) throw new CheckpointError(`${runDir} has no ${CHECKPOINT_FILES.generator} (no checkpoint was written yet)`);
  const seed = givenSeed ?? randomSeed();
  // building G initializes its weights from the global generator: leave that as it was
  return withRngState(() =>
    torch.scope(() => {
      const G = fromSpec(preset.generator, { device });
      const weights = safetensors.loadFile(file, { device });
      checkFiniteWeights(weights, file); // a diverged run's NaN weights would give blank images silently
      G.loadStateDict(weights);
      const z = noise(preset.step.noise, count, { seed });
      const images = generate(G, z, device);
      G.dispose();
      return { images, shape: [count, IMAGE_SIDE, IMAGE_SIDE] as [number, number, number], range: preset.normalize, seed };
    }),
  );
}

/**
 * Writes samples as a PNG grid (torchvision's make_grid layout, `nrow` images per row, default 8),
 * atomically. Returns the grid written.
 */
export function saveSamples(file: string, samples: Pick<Samples, 'images' | 'shape' | 'range'>, opts: { nrow?: number; padding?: number } = {}): GridImage {
  return saveImageGrid(file, { data: samples.images, shape: samples.shape }, { nrow: opts.nrow ?? 8, padding: opts.padding ?? 2, range: samples.range });
}
