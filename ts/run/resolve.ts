/**
 * A run's config, resolved once. What the caller gives (a RunConfig, or at the public entry a
 * ResolvedConfig) becomes the one ResolvedConfig the Trainer trains with: the preset with the overrides,
 * for a resume merged with the run's stored config (config/merge.ts), the device resolved (config/device.ts),
 * and the preset adapted to the images it will train on (their channels, size and classes). Nothing
 * changes the config after this.
 */
import { type ImageDataset } from '../data/mnist';
import { resolveConfigAndDevice, type ResolvedConfig, type RunConfig } from '../config/config';
import { type CudaEnv, cudaEnv } from '../config/device';
import { mergeResumed, optionsOf } from '../config/merge';
import { readTrainerState, type TrainerState } from '../store/checkpoint';
import { readRunInfo, type RunInfo } from '../store/run-dir';
import { ensureDir } from '../util/fs';
import { checkGroupDevice } from './data-parallel';
import { type TrainerOptions } from './trainer-events';
import { loadDataset, presetForData } from './training-data';

/** A run ready to build: its config and what resolving it read. */
export interface ResolvedRun {
  /** The config the run trains with (the preset adapted to `dataset`). */
  config: ResolvedConfig;
  /** Why device 'auto' fell back to the CPU (undefined when a device was asked for, or CUDA was used). */
  deviceFallback: string | undefined;
  /** The config as the caller wrote it, for config.json (null when a resolved one was given). */
  written: RunConfig | null;
  /** The run this one resumes: its config.json and checkpoint record (null for a new run). */
  resumed: { info: RunInfo; state: TrainerState } | null;
  /** The training images, in memory (uploaded to the device by the Trainer). */
  dataset: ImageDataset;
  /** Images to train on (the first `limit`; undefined: all). A resume keeps its run's unless a dataset or limit is given. */
  limit: number | undefined;
}

/** Whether `x` is a ResolvedRun rather than a config (a RunConfig refuses these keys). */
export function isResolvedRun(x: unknown): x is ResolvedRun {
  return typeof x === 'object' && x !== null && 'dataset' in x && 'written' in x && 'resumed' in x && 'config' in x;
}

/**
 * The config alone (no images read): `given` resolved against the machine, or for a resume
 * (`given.resume`) the run's stored config with the options given now. A ResolvedConfig is taken as
 * resolved (resuming, its preset must equal the run's but for epochs).
 */
export function resolveGiven(given: RunConfig | ResolvedConfig, env: CudaEnv = cudaEnv()): Omit<ResolvedRun, 'dataset' | 'limit'> {
  const isResolved = typeof given.preset === 'object' && given.preset !== null;
  const written = isResolved ? null : (given as RunConfig);
  const dir = given.resume;
  if (!dir) {
    if (isResolved) return { config: given as ResolvedConfig, deviceFallback: undefined, written, resumed: null };
    return { ...resolveConfigAndDevice(given as RunConfig, env), written, resumed: null };
  }
  const info = readRunInfo(dir);
  const state = readTrainerState(dir);
  const asGiven = isResolved ? optionsOf(given as ResolvedConfig) : (given as RunConfig);
  const merged = mergeResumed(info.config, asGiven, env, dir, isResolved ? (given as ResolvedConfig).preset : undefined);
  return { ...merged, written, resumed: { info, state } };
}

/**
 * The whole resolution: resolveGiven, then the images read (or `opts.dataset`) and the preset adapted to
 * them (of `opts`: dataset, limit, onDownload, onWarning, and processGroup, whose device is checked and
 * whose rank 0 alone checks the save folder). A new run's save folder and a data-parallel run's device are checked before minutes of loading.
 */
export async function resolveRun(given: RunConfig | ResolvedConfig, opts: TrainerOptions = {}, env: CudaEnv = cudaEnv()): Promise<ResolvedRun> {
  if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 1))
    throw new RangeError(`limit: expected an integer >= 1, got ${opts.limit}`);
  const r = resolveGiven(given, env);
  const pg = opts.processGroup;
  if (!r.resumed && (pg?.rank ?? 0) === 0) ensureDir(r.config.saveDir, 'save folder');
  if (pg) checkGroupDevice(pg, r.config.device); // Gloo is the CPU's, NCCL the GPU's
  const dataset = opts.dataset ?? (await loadDataset(r.config.data, r.config.preset, opts));
  const preset = presetForData(r.config.preset, dataset);
  const config = preset === r.config.preset ? r.config : { ...r.config, preset };
  const limit = opts.limit ?? (opts.dataset ? undefined : (r.resumed?.info.limit ?? undefined));
  return { ...r, config, dataset, limit };
}
