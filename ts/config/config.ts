/**
 * Run configuration: a JSON file or object naming a preset plus overrides, validated strictly, then
 * resolved against the preset and the machine into everything a training run needs.
 *
 * Keys (all optional):
 *   preset       one of the preset names (default 'cgan')
 *   epochs       integer >= 1 (overrides the preset's)
 *   batchSize    integer >= 1 (overrides the preset's)
 *   lr           number > 0, the optimizer's learning rate (G and D alike)
 *   betas        [beta1, beta2], each in [0, 1) (Adam only)
 *   zDim         integer >= 1: noise dimension; rewrites G's first Linear and the noise spec
 *   device       'auto' | 'cpu' | 'cuda' (default 'auto': CUDA when usable, else CPU with the reason: resolveDevice)
 *   seed         integer >= 0: RNG seed; absent means not seeded (non-deterministic)
 *   saveDir      non-empty string (default 'runs')
 *   saveEvery    integer >= 0: checkpoint every n epochs (default 10; 0 disables periodic checkpoints)
 *   sampleEvery  integer >= 0: sample grid every n epochs (default 1; 0 disables)
 *   evalEvery    integer >= 0: classifier-FID, IS and coverage every n epochs and at the last (default 0:
 *                none; MNIST runs only), into TensorBoard, metrics.csv and quality.png
 *   evalN        integer from 2 to 1000000: samples per evaluation (default 10000; fewer is faster, noisier)
 *   verbose      0-3 (default 1), see VERBOSE_LEVELS
 *   threads      integer from 1 to MAX_THREADS: CPU intra-op threads (absent: LibTorch's default); more
 *                than the machine's cores is allowed (the Trainer warns)
 *   flushDenormal boolean (default true): treat denormal floats as zero, as torch.set_flush_denormal(True);
 *                a run whose values underflow otherwise slows down several-fold
 *   cudaGraphs   boolean (default true): on CUDA, replay each training step as a captured CUDA graph
 *   precision    'fp32' (default) | 'bf16' | 'fp16' | 'auto': the fused step's precision (GanStepOptions.precision)
 *   resume       non-empty string: checkpoint path to resume from
 *   loss, penalty, dSteps, ema, augment, conditional: the recipes (config/recipes.ts)
 *   data         { dataset: 'mnist' | 'fashion-mnist' | 'folder', root?: string, download?: boolean (default true),
 *                  imageSize?: 28 | 32 | 64, channels?: 1 | 3 }: 'folder' reads PNG/JPEG files under root
 *                  (one subfolder per class gives labels), resized to imageSize (default: the preset's, 28)
 *                  with `channels` (default: 1 when every image is grayscale, else 3)
 *
 * Relative paths (saveDir, resume, data.root) are kept as written; callers resolve them (against
 * the working directory).
 */
import * as fs from 'node:fs';
import { z } from 'zod';
import { PRECISIONS, type Precision } from '../gan/precision';
import { DEFAULT_PRESET, getPreset, PRESET_NAMES, withZDim, type Preset, type PresetName } from '../gan/presets';
import { expected, intAtLeast } from '../util/schema';
import { suggest } from '../util/suggest';
import { type CudaEnv, cudaEnv, DEFAULT_DEVICE, type DeviceOption, resolveDevice } from './device';
import { ConfigError, describeValue, formatPath, valueAt, type ConfigIssue } from './errors';
import { applyRecipes, RECIPE_FIELDS, type RecipeConfig } from './recipes';

export { type CudaEnv, type DeviceChoice, type DeviceOption, cudaEnv, resolveDevice } from './device';

export { ConfigError, describeValue, formatPath, type ConfigIssue } from './errors';

/**
 * What each `verbose` level prints (seed 000's levels; each level includes the ones below it):
 * 0 nothing, 1 the model architecture, 2 also the optimizer, 3 also parameter counts per layer.
 */
export const VERBOSE_LEVELS = Object.freeze({
  0: 'nothing',
  1: 'model architecture (generator and discriminator)',
  2: 'model architecture and optimizer settings',
  3: 'model architecture, optimizer settings and parameter counts per layer',
} as const);

export type VerboseLevel = 0 | 1 | 2 | 3;
export type DatasetName = 'mnist' | 'fashion-mnist' | 'folder';

/** Defaults for the run options (the training hyper-parameters' defaults come from the preset). */
export const CONFIG_DEFAULTS = Object.freeze({
  preset: DEFAULT_PRESET,
  device: DEFAULT_DEVICE,
  saveDir: 'runs',
  saveEvery: 10,
  sampleEvery: 1,
  evalEvery: 0,
  evalN: 10000,
  verbose: 1 as VerboseLevel,
  data: Object.freeze({ dataset: 'mnist' as DatasetName, download: true }),
});

/**
 * The most intra-op threads a config may ask for: OpenMP aborts the whole process when it cannot
 * create its thread team (20,000 threads did here), so the number is bounded where it enters.
 */
export const MAX_THREADS = 1024;

// ---------------------------------------------------------------------------------------------
// Schema. Each leaf's error message is the "expected ..." form; formatIssue adds path and value.

export const nonEmptyString = z.string(expected('a non-empty string')).min(1, expected('a non-empty string'));
export const beta = z.number(expected('a number in [0, 1)')).min(0, expected('a number in [0, 1)')).lt(1, expected('a number in [0, 1)'));

export const DataSchema = z.strictObject(
  {
    dataset: z.enum(['mnist', 'fashion-mnist', 'folder'], expected('"mnist", "fashion-mnist" or "folder"')),
    root: nonEmptyString.optional(),
    download: z.boolean(expected('a boolean')).optional(),
    imageSize: z.union([z.literal(28), z.literal(32), z.literal(64)], expected('28, 32 or 64 (the sizes the DCGAN networks are built for)')).optional(),
    channels: z.union([z.literal(1), z.literal(3)], expected('1 (grayscale) or 3 (RGB)')).optional(),
  },
  expected('an object { dataset, root?, download?, imageSize?, channels? }'),
);

export const RunConfigSchema = z.strictObject(
  {
    preset: z.enum(PRESET_NAMES as [PresetName, ...PresetName[]], expected(`one of ${PRESET_NAMES.join(', ')}`)).optional(),
    epochs: intAtLeast(1).optional(),
    batchSize: intAtLeast(1).optional(),
    lr: z.number(expected('a number > 0')).gt(0, expected('a number > 0')).optional(),
    betas: z.tuple([beta, beta], expected('an array of two numbers [beta1, beta2], each in [0, 1)')).optional(),
    zDim: intAtLeast(1).optional(),
    device: z.enum(['auto', 'cpu', 'cuda'], expected('"auto", "cpu" or "cuda"')).optional(),
    seed: intAtLeast(0).optional(),
    saveDir: nonEmptyString.optional(),
    saveEvery: intAtLeast(0).optional(),
    sampleEvery: intAtLeast(0).optional(),
    evalEvery: intAtLeast(0).optional(),
    evalN: intAtLeast(2).max(1_000_000, expected('an integer from 2 to 1000000')).optional(),
    verbose: z.int(expected('an integer from 0 to 3')).min(0, expected('an integer from 0 to 3')).max(3, expected('an integer from 0 to 3')).optional(),
    threads: intAtLeast(1)
      .max(MAX_THREADS, expected(`an integer from 1 to ${MAX_THREADS}`))
      .optional(),
    flushDenormal: z.boolean(expected('true or false')).optional(),
    cudaGraphs: z.boolean(expected('true or false')).optional(),
    precision: z.enum(PRECISIONS, expected(PRECISIONS.map((p) => `'${p}'`).join(', '))).optional(),
    resume: nonEmptyString.optional(),
    data: DataSchema.optional(),
    ...RECIPE_FIELDS,
  },
  expected('a JSON object'),
);

/** A validated run config, as written (no defaults applied). */
export interface RunConfig extends RecipeConfig {
  preset?: PresetName;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  betas?: [number, number];
  zDim?: number;
  device?: DeviceOption;
  seed?: number;
  saveDir?: string;
  saveEvery?: number;
  sampleEvery?: number;
  evalEvery?: number;
  evalN?: number;
  verbose?: VerboseLevel;
  threads?: number;
  flushDenormal?: boolean;
  cudaGraphs?: boolean;
  precision?: Precision;
  resume?: string;
  data?: { dataset: DatasetName; root?: string; download?: boolean; imageSize?: 28 | 32 | 64; channels?: 1 | 3 };
}

/** Everything a run needs: the preset with the overrides merged in, and the run options. */
export interface ResolvedConfig {
  /** The effective preset: `name` is the chosen preset's, epochs/batchSize/optimizer/zDim as overridden. */
  preset: Preset;
  device: 'cpu' | 'cuda';
  /** RNG seed; undefined when the config gave none (not seeded). */
  seed: number | undefined;
  saveDir: string;
  /** Checkpoint every n epochs; 0 means no periodic checkpoints. */
  saveEvery: number;
  /** Sample grid every n epochs; 0 means none. */
  sampleEvery: number;
  /** Quality metrics every n epochs (and at the last); 0 means none. */
  evalEvery: number;
  /** Samples per evaluation. */
  evalN: number;
  verbose: VerboseLevel;
  threads: number | undefined;
  /** Denormal floats treated as zero during training (torch.setFlushDenormal). */
  flushDenormal: boolean;
  /** On CUDA, training steps replayed as a captured CUDA graph (GanStepOptions.cudaGraphs). */
  cudaGraphs: boolean;
  /** The fused step's precision as asked ('auto' is resolved by the GanStep, which says what runs). */
  precision: Precision;
  resume: string | undefined;
  data: { dataset: DatasetName; root: string | undefined; download: boolean; imageSize?: 28 | 32 | 64; channels?: 1 | 3 };
}

// ---------------------------------------------------------------------------------------------
// Errors: zod's issues in our words

const ROOT_KEYS = Object.keys(RunConfigSchema.shape);
const DATA_KEYS = Object.keys(DataSchema.shape);

function formatIssue(issue: z.core.$ZodIssue, input: unknown): ConfigIssue[] {
  const path = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') {
    const allowed = path.length === 0 ? ROOT_KEYS : path.length === 1 && path[0] === 'data' ? DATA_KEYS : [];
    return issue.keys.map((key) => {
      const hint = suggest(key, allowed);
      const tail = hint ? ` (did you mean "${hint}"?)` : allowed.length ? `; valid keys: ${allowed.join(', ')}` : '';
      return { path: [...path, key], message: `${formatPath(path)}: unknown key ${JSON.stringify(key)}${tail}` };
    });
  }
  const { present, value } = valueAt(input, path);
  if (path.length === 1 && path[0] === 'preset' && typeof value === 'string') {
    const hint = suggest(value, PRESET_NAMES);
    return [
      {
        path,
        message:
          `config.preset: unknown preset ${JSON.stringify(value)}${hint ? ` (did you mean "${hint}"?)` : ''}; ` + `valid presets: ${PRESET_NAMES.join(', ')}`,
      },
    ];
  }
  if (!present && path.length > 0) {
    const key = path[path.length - 1];
    return [{ path, message: `${formatPath(path.slice(0, -1))}: missing required key ${JSON.stringify(key)} (expected ${issue.message})` }];
  }
  return [{ path, message: `${formatPath(path)}: expected ${issue.message}, got ${describeValue(value)}` }];
}

// ---------------------------------------------------------------------------------------------
// Parsing and resolution

/**
 * Validates a run config (parsed JSON or an object). Throws ConfigError listing every problem.
 * Returns the config as written, without defaults (so configs can be layered before resolving).
 * `source` (e.g. the file name) prefixes the error messages.
 */
export function parseConfig(input: unknown, source?: string): RunConfig {
  const result = RunConfigSchema.safeParse(input);
  if (result.success) return result.data as RunConfig;
  throw new ConfigError(
    result.error.issues.flatMap((i) => formatIssue(i, input)),
    source,
  );
}

/** Reads and validates a JSON run config file. Missing file, unreadable file and bad JSON are ConfigErrors naming the file. */
export function loadConfigFile(path: string): RunConfig {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'config file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a config file'
          : `cannot read config file: ${(err as Error).message}`;
    throw new ConfigError([{ path: [], message: why }], path);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError([{ path: [], message: `invalid JSON: ${withLineColumn((err as Error).message, text)}` }], path);
  }
  return parseConfig(json, path);
}

/** Appends '(line L, column C)' to a JSON.parse message that only gives 'position N'. */
function withLineColumn(message: string, text: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = Number(m[1]) - (before.lastIndexOf('\n') + 1) + 1;
  return `${message} (line ${line}, column ${column})`;
}

/**
 * Applies the config to its preset and the machine: the preset (default 'cgan') with epochs,
 * batchSize, lr, betas and zDim merged in, the device resolved (resolveDevice: 'auto' -> 'cuda' when
 * `cudaAvailable`, else 'cpu'; 'cuda' without CUDA is a ConfigError naming why), and every default filled in.
 * The config is validated again, so unvalidated objects are safe to pass.
 */
export function resolveConfig(config: RunConfig, env: CudaEnv = cudaEnv(), source?: string): ResolvedConfig {
  return resolveConfigAndDevice(config, env, source).config;
}

/** resolveConfig, and why device 'auto' fell back to the CPU (undefined when it asked for a device, or got CUDA). */
export function resolveConfigAndDevice(
  config: RunConfig,
  env: CudaEnv = cudaEnv(),
  source?: string,
): { config: ResolvedConfig; deviceFallback: string | undefined } {
  const c = parseConfig(config, source);
  let preset = getPreset(c.preset ?? CONFIG_DEFAULTS.preset);
  const issues: ConfigIssue[] = [];

  if (c.epochs !== undefined) preset.epochs = c.epochs;
  if (c.batchSize !== undefined) preset.batchSize = c.batchSize;
  if (c.lr !== undefined) preset.optimizer.lr = c.lr;
  if (c.betas !== undefined) {
    if (preset.optimizer.type === 'adam') preset.optimizer.betas = [c.betas[0], c.betas[1]];
    else {
      issues.push({
        path: ['betas'],
        message: `config.betas: preset "${preset.name}" uses the ${preset.optimizer.type} optimizer, which has no betas`,
      });
    }
  }
  if (c.zDim !== undefined) preset = withZDim(preset, c.zDim);
  preset = applyRecipes(preset, c, issues);
  if (c.data?.dataset === 'folder' && c.data.root === undefined)
    issues.push({ path: ['data', 'root'], message: 'config.data.root: dataset "folder" needs root, the folder of images' });
  if (c.data && c.data.dataset !== 'folder' && (c.data.imageSize !== undefined || c.data.channels !== undefined))
    issues.push({ path: ['data'], message: `config.data: imageSize and channels apply to dataset "folder" only (${c.data.dataset} is 1 x 28 x 28)` });

  const choice = resolveDevice(c.device ?? CONFIG_DEFAULTS.device, env);
  if ('unusable' in choice) issues.push({ path: ['device'], message: `config.device: "cuda" was requested but ${choice.unusable}; use "auto" or "cpu"` });
  if (issues.length || 'unusable' in choice) throw new ConfigError(issues, source);

  const resolved: ResolvedConfig = {
    preset,
    device: choice.device,
    seed: c.seed,
    saveDir: c.saveDir ?? CONFIG_DEFAULTS.saveDir,
    saveEvery: c.saveEvery ?? CONFIG_DEFAULTS.saveEvery,
    sampleEvery: c.sampleEvery ?? CONFIG_DEFAULTS.sampleEvery,
    evalEvery: c.evalEvery ?? CONFIG_DEFAULTS.evalEvery,
    evalN: c.evalN ?? CONFIG_DEFAULTS.evalN,
    verbose: c.verbose ?? CONFIG_DEFAULTS.verbose,
    threads: c.threads,
    flushDenormal: c.flushDenormal ?? true,
    cudaGraphs: c.cudaGraphs ?? true,
    precision: c.precision ?? 'fp32',
    resume: c.resume,
    data: {
      dataset: c.data?.dataset ?? CONFIG_DEFAULTS.data.dataset,
      root: c.data?.root,
      download: c.data?.download ?? CONFIG_DEFAULTS.data.download,
      ...(c.data?.imageSize !== undefined ? { imageSize: c.data.imageSize } : {}),
      ...(c.data?.channels !== undefined ? { channels: c.data.channels } : {}),
    },
  };
  return { config: resolved, deviceFallback: choice.fallback };
}
