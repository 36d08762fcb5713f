/** `libtorch-gan train`'s flags: the table, and argv (with a --config file) to a RunConfig. */
import * as fs from 'node:fs';
import { type ConfigError, loadConfigFile, MAX_THREADS, type RunConfig } from '../../config/config';
import { resolveDevice } from '../../config/device';
import type * as dist from '../../distributed/index';
import { PRECISIONS } from '../../gan/precision';
import { PRESET_NAMES, type PresetName } from '../../gan/presets';
import { nprocLimit } from '../launch';
import { RECIPE_FLAG_OF, RECIPE_OPTIONS, recipeFlags } from './recipe-flags';
import { choiceFlag, intFlag, parseCommandArgs, positiveNumberFlag, stringFlag, UsageError } from './common';

const NAME = 'train';

export const TRAIN_OPTIONS = {
  preset: { type: 'string' },
  config: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  device: { type: 'string' },
  'save-dir': { type: 'string' },
  'save-every': { type: 'string' },
  'sample-every': { type: 'string' },
  'eval-every': { type: 'string' },
  'eval-n': { type: 'string' },
  seed: { type: 'string' },
  verbose: { type: 'string' },
  threads: { type: 'string' },
  precision: { type: 'string' },
  resume: { type: 'string' },
  limit: { type: 'string' },
  dataset: { type: 'string' },
  data: { type: 'string' },
  'data-root': { type: 'string' },
  'image-size': { type: 'string' },
  channels: { type: 'string' },
  nproc: { type: 'string' },
  'nproc-oversubscribe': { type: 'boolean' },
  'dist-timeout': { type: 'string' },
  'dist-backend': { type: 'string' },
  ...RECIPE_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** Config keys and the flags that set them (for naming flags in config errors). */
const FLAG_OF: Record<string, string> = {
  preset: '--preset',
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  device: '--device',
  saveDir: '--save-dir',
  saveEvery: '--save-every',
  sampleEvery: '--sample-every',
  evalEvery: '--eval-every',
  evalN: '--eval-n',
  seed: '--seed',
  verbose: '--verbose',
  threads: '--threads',
  precision: '--precision',
  resume: '--resume',
  data: '--data',
  'data.imageSize': '--image-size',
  'data.channels': '--channels',
  ...RECIPE_FLAG_OF,
};

export interface TrainArgs {
  config: RunConfig;
  limit?: number;
  given: Set<string>;
  nproc?: number;
  distTimeout: number;
  distBackend?: dist.Backend;
}

/** Turns the flags (and the --config file) into a RunConfig. Throws UsageError / ConfigError. */
export function parseTrainArgs(args: string[]): TrainArgs | 'help' {
  const { values: v } = parseCommandArgs(NAME, args, TRAIN_OPTIONS);
  if (v.help) return 'help';
  const fromFile: RunConfig = v.config !== undefined ? loadConfigFile(stringFlag(NAME, 'config', v.config, 'a file name')!) : {};
  const flags: RunConfig = {};
  const given = new Set<string>();
  const set = <K extends keyof RunConfig>(key: K, value: RunConfig[K] | undefined) => {
    if (value === undefined) return;
    flags[key] = value;
    given.add(key);
  };
  set('preset', choiceFlag<PresetName>(NAME, 'preset', v.preset, PRESET_NAMES));
  set('epochs', intFlag(NAME, 'epochs', v.epochs, 1));
  set('batchSize', intFlag(NAME, 'batch-size', v['batch-size'], 1));
  set('lr', positiveNumberFlag(NAME, 'lr', v.lr));
  set('device', choiceFlag(NAME, 'device', v.device, ['auto', 'cpu', 'cuda'] as const));
  set('saveDir', stringFlag(NAME, 'save-dir', v['save-dir'], 'a folder name'));
  set('saveEvery', intFlag(NAME, 'save-every', v['save-every'], 0));
  set('sampleEvery', intFlag(NAME, 'sample-every', v['sample-every'], 0));
  set('evalEvery', intFlag(NAME, 'eval-every', v['eval-every'], 0));
  set('evalN', intFlag(NAME, 'eval-n', v['eval-n'], 2, 1_000_000));
  set('seed', intFlag(NAME, 'seed', v.seed, 0));
  set('verbose', intFlag(NAME, 'verbose', v.verbose, 0, 3) as RunConfig['verbose']);
  set('threads', intFlag(NAME, 'threads', v.threads, 1, MAX_THREADS));
  set('precision', choiceFlag(NAME, 'precision', v.precision, PRECISIONS));
  set('resume', stringFlag(NAME, 'resume', v.resume, 'a run folder'));
  for (const [key, value] of Object.entries(recipeFlags(v))) set(key as keyof RunConfig, value as never);
  if (v.dataset !== undefined && v.data !== undefined) throw new UsageError('give the data once: --data or --dataset, got both', NAME);
  const named = choiceFlag(NAME, 'dataset', v.dataset, ['mnist', 'fashion-mnist'] as const);
  const dataArg = stringFlag(NAME, 'data', v.data, 'mnist, fashion-mnist or a folder of images');
  // --data takes a dataset name or a folder: a name that is neither is an error, never a folder guess
  const folder = dataArg !== undefined && dataArg !== 'mnist' && dataArg !== 'fashion-mnist' ? dataArg : undefined;
  if (folder !== undefined && !fs.existsSync(folder))
    throw new UsageError(`--data: ${JSON.stringify(folder)} is neither mnist, fashion-mnist nor an existing folder of images`, NAME);
  const dataset = folder !== undefined ? 'folder' : ((dataArg as 'mnist' | 'fashion-mnist' | undefined) ?? named);
  let root = stringFlag(NAME, 'data-root', v['data-root'], 'a folder name');
  if (folder !== undefined && root !== undefined) throw new UsageError('--data-root: applies to mnist and fashion-mnist; --data DIR is the folder', NAME);
  root = folder ?? root;
  const imageSize = intFlag(NAME, 'image-size', v['image-size'], 1) as 28 | 32 | 64 | undefined;
  const channels = intFlag(NAME, 'channels', v.channels, 1) as 1 | 3 | undefined;
  if (dataset !== undefined || root !== undefined || imageSize !== undefined || channels !== undefined) {
    set('data', {
      ...fromFile.data,
      dataset: dataset ?? fromFile.data?.dataset ?? 'mnist',
      ...(root !== undefined ? { root } : {}),
      ...(imageSize !== undefined ? { imageSize } : {}),
      ...(channels !== undefined ? { channels } : {}),
    });
  }
  const limit = intFlag(NAME, 'limit', v.limit, 1);
  const nproc = intFlag(NAME, 'nproc', v.nproc, 1, 1024);
  const limitRanks = nprocLimit();
  if (nproc !== undefined && nproc > limitRanks && !v['nproc-oversubscribe'])
    throw new UsageError(
      `--nproc ${nproc}: this machine runs at most ${limitRanks} ranks (one per CPU core; each rank loads the data and both models); --nproc-oversubscribe runs more anyway`,
      NAME,
    );
  const distTimeout = intFlag(NAME, 'dist-timeout', v['dist-timeout'], 1, 86_400) ?? 1800;
  const distBackend = choiceFlag<dist.Backend>(NAME, 'dist-backend', v['dist-backend'], ['gloo', 'nccl']);
  return { config: { ...fromFile, ...flags }, limit, given, nproc, distTimeout, distBackend };
}

/**
 * A data-parallel run's backend: --dist-backend, else the one for the device the run will train on
 * (resolved as the Trainer resolves it: 'auto' is CUDA when available): NCCL for CUDA, Gloo for the CPU.
 * `picked`: chosen here rather than given.
 */
export function distBackendFor(config: RunConfig, given: dist.Backend | undefined): { backend: dist.Backend; picked: boolean } {
  if (given) return { backend: given, picked: false };
  const choice = resolveDevice(config.device);
  // a CUDA run without a GPU fails at join, naming the reason (NCCL's own check)
  const cuda = 'unusable' in choice ? true : choice.device === 'cuda';
  return { backend: cuda ? 'nccl' : 'gloo', picked: true };
}

/** A ConfigError's issues, naming the flag where a flag set the key. */
export function configMessage(err: ConfigError, given: Set<string>): string {
  return err.issues
    .map((i) => {
      const top = String(i.path[0] ?? '');
      // a nested key set by a flag of its own (data.imageSize: --image-size) is named by that flag
      const nested = i.path.slice(0, 2).join('.');
      const key = FLAG_OF[nested] ? nested : top;
      if (!given.has(top) || !FLAG_OF[key]) return err.source ? `${err.source}: ${i.message}` : i.message;
      return i.message.replace(new RegExp(`^config\\.${key}(\\.[\\w.\\[\\]]+)?:`), `${FLAG_OF[key]}:`).replace(`config.${key}:`, `${FLAG_OF[key]}:`);
    })
    .join('\n');
}
