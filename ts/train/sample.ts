/**
 * Images from a trained generator: noise as the preset draws it, G in eval mode without autograd,
 * and a PNG grid writer. Drawing with a seed leaves the global RNG as it was.
 */
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { saveImageGrid, type GridImage } from '../logging/grid';
import { fromSpec } from '../nn/from-spec';
import { type Module } from '../nn/module';
import { type Device } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { checkpointFile, CheckpointError, CHECKPOINT_FILES, hasCheckpoint, readRunJson } from './checkpoint';
import { type ResolvedConfig } from './config';
import { type Preset } from './presets';
import { type NoiseSpec } from './step-spec';

/** Side length of the (square, single-channel) images the presets generate. */
export const IMAGE_SIDE = 28;

export interface Samples {
  /** count * 784 pixels, image after image, in the preset's range ('[-1,1]' for Tanh generators). */
  images: Float32Array;
  /** [count, 28, 28] */
  shape: [number, number, number];
  range: '[-1,1]' | '[0,1]';
  /** The seed the noise was drawn with. */
  seed: number;
}

/**
 * Draws `n` noise vectors as the preset's training step does (uniform on [low, high) or standard
 * normal), on the CPU. With `seed`, the draw uses that seed and restores the global generators'
 * state afterwards (CPU, and CUDA when available); without, it draws from the global generator.
 */
export function drawNoise(spec: NoiseSpec, n: number, opts: { seed?: number } = {}): Tensor {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`noise count: expected an integer >= 1, got ${n}`);
  const draw = () =>
    spec.dist === 'uniform'
      ? torch.scope(() => {
          const low = spec.low ?? -1;
          const high = spec.high ?? 1;
          return torch.rand([n, spec.dim]).mul(high - low).add(low);
        })
      : torch.randn([n, spec.dim]);
  if (opts.seed === undefined) return draw();
  const seed = opts.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed: expected an integer >= 0, got ${seed}`);
  return withRngState(() => {
    torch.manualSeed(seed);
    return draw();
  });
}

/**
 * Runs `fn` and then puts the global generators back as they were (CPU, and CUDA when available),
 * so that whatever `fn` draws (or seeds) does not change later draws.
 */
export function withRngState<T>(fn: () => T): T {
  const cpu = torch.getRngState('cpu');
  const cuda = torch.cuda.isAvailable() ? torch.getRngState('cuda') : null;
  try {
    return fn();
  } finally {
    torch.setRngState(cpu, 'cpu');
    if (cuda) torch.setRngState(cuda, 'cuda');
    cpu.dispose();
    cuda?.dispose();
  }
}

/**
 * Runs G on `noise` (moved to `device`) in eval mode without autograd and returns the images as a
 * Float32Array on the CPU. G's training mode is restored afterwards.
 */
export function generate(generator: Module, noise: Tensor, device: Device = 'cpu'): Float32Array {
  const wasTraining = generator.training;
  generator.eval();
  try {
    return torch.scope(() =>
      torch.noGrad(() => {
        const z = noise.device === device ? noise : noise.to(device);
        return generator.forward(z).to('cpu').toFloat32Array();
      }),
    );
  } finally {
    generator.train(wasTraining);
  }
}

/** A random seed for sampling without one (so that sampling never advances the global generator). */
export function randomSeed(): number {
  return randomInt(0, 2 ** 31);
}

/** The run's config.json (see Trainer), with the effective preset under `config.preset`. */
export interface RunInfo {
  format: string;
  run: string;
  startTime: string;
  packageVersion: string;
  libtorchVersion: string;
  device: string;
  seed: number | null;
  shuffleSeed: number;
  limit: number | null;
  dataset: { name: string; images: number; source?: string };
  config: ResolvedConfig;
  runConfig: unknown;
  /** One entry per resumption: when, after which epoch, and the config given to it. */
  resumes: { time: string; fromEpoch: number; packageVersion: string; runConfig?: unknown }[];
}

/** Reads `<runDir>/config.json`; throws a CheckpointError naming the problem. */
export function readRunInfo(runDir: string): RunInfo {
  const file = path.join(runDir, 'config.json');
  const info = readRunJson<RunInfo>(file, () =>
    fs.existsSync(runDir) ? `${runDir} is not a run folder (config.json is missing)` : `run folder ${runDir} does not exist`,
  );
  const preset = info?.config?.preset as Preset | undefined;
  if (!preset || typeof preset !== 'object' || !preset.generator || !preset.step?.noise) {
    throw new CheckpointError(`${file}: not a libtorch-gan run config (config.preset is missing)`);
  }
  return info;
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

/**
 * Rebuilds G from the run's config.json preset, loads generator.safetensors (verified against
 * trainer.json when there is one) and generates `count` images from seeded noise. The global
 * random generators are left as they were.
 */
export function sample(opts: SampleOptions): Samples {
  const runDir = opts.checkpoint;
  const count = opts.count ?? 64;
  if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`count: expected an integer >= 1, got ${count}`);
  const device = opts.device ?? 'cpu';
  const info = readRunInfo(runDir);
  const preset = info.config.preset;
  const file = hasCheckpoint(runDir)
    ? checkpointFile(runDir, CHECKPOINT_FILES.generator)
    : path.join(runDir, CHECKPOINT_FILES.generator);
  if (!fs.existsSync(file)) throw new CheckpointError(`${runDir} has no ${CHECKPOINT_FILES.generator} (no checkpoint was written yet)`);
  const seed = opts.seed ?? randomSeed();
  // building G initializes its weights from the global generator: leave that as it was
  return withRngState(() => torch.scope(() => {
    const G = fromSpec(preset.generator, { device });
    G.loadStateDict(safetensors.loadFile(file, { device }));
    const z = drawNoise(preset.step.noise, count, { seed });
    const images = generate(G, z, device);
    G.dispose();
    return { images, shape: [count, IMAGE_SIDE, IMAGE_SIDE] as [number, number, number], range: preset.normalize, seed };
  }));
}

/**
 * Writes samples as a PNG grid (torchvision's make_grid layout, `nrow` images per row, default 8),
 * atomically. Returns the grid written.
 */
export function saveSamples(file: string, samples: Pick<Samples, 'images' | 'shape' | 'range'>, opts: { nrow?: number; padding?: number } = {}): GridImage {
  return saveImageGrid(file, { data: samples.images, shape: samples.shape }, { nrow: opts.nrow ?? 8, padding: opts.padding ?? 2, range: samples.range });
}
