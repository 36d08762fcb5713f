/**
 * Where a run starts: a new run folder with its config.json and losses.csv, or for a resume the run's
 * checkpoint loaded into the models built for it, what config.json says next, and the steps of an
 * epoch it was stopped inside. (The config a resume continues with: config/merge.ts.)
 */
import * as path from 'node:path';
import { type ProcessGroup } from '../distributed/index';
import { randomSeed } from '../gan/noise';
import { type Tensor } from '../tensor/tensor';
import { removeOrphanedTempFiles, type TrainerState } from '../store/checkpoint';
import { resumeCheckpoint } from '../store/checkpoint-restore';
import { type TrainingModels } from '../store/training-state';
import { ConfigError } from '../config/errors';
import { type ResolvedConfig } from '../config/config';
import { createRunDir, newRunInfo, readEpochSteps, resumedRunInfo, startLosses, type RunInfo } from '../store/run-dir';
import { agreeAtStart } from './data-parallel';
import { type ResolvedRun } from './resolve';

export interface ResumedRun {
  state: TrainerState;
  /** The stored fixed noise of the sample grids, on the device (absent in older checkpoints). */
  fixedNoise?: Tensor;
  runInfo: RunInfo;
  /** Stopped inside the next epoch: its steps done and their records (null when losses.csv lacks them). */
  within: { epoch: number; steps: number; perStep: Float32Array | null } | null;
}

/**
 * Loads the run's checkpoint into `models` (in place) and returns what the run continues from. First
 * the temporary files of writes that a kill interrupted are removed (checkpoint files are tens of
 * MB each): the resuming trainer is the folder's one writer from here on (rank 0 of a data-parallel run;
 * each rank takes its own RNG state). `written`: the config as given to this resumption, for config.json.
 */
export function resumeRun(
  run: { dir: string; info: RunInfo; state: TrainerState; config: ResolvedConfig; written: unknown },
  models: TrainingModels,
  ranks: { rank: number; worldSize: number } = { rank: 0, worldSize: 1 },
): ResumedRun {
  const stateWorld = run.state.worldSize ?? 1;
  if (stateWorld !== ranks.worldSize) {
    throw new ConfigError([
      {
        path: ['resume'],
        message: `config.resume: the run in ${run.dir} was trained by ${stateWorld} rank(s); resume it with ${stateWorld}, not ${ranks.worldSize}`,
      },
    ]);
  }
  // rank 0 is the folder's one writer; the other ranks only read it
  if (ranks.rank === 0) removeOrphanedTempFiles(run.dir);
  const { state, fixedNoise } = resumeCheckpoint(run.dir, { ...models, device: run.config.device, rank: ranks.rank });
  const runInfo = resumedRunInfo(run.info, { config: run.config, fromEpoch: state.epoch, written: run.written });
  const w = state.interrupted;
  const within =
    w && w.epoch === state.epoch + 1 && w.steps > 0 ? { ...w, perStep: readEpochSteps(run.dir, w.epoch, state.globalStep - w.steps, w.steps) } : null;
  return { state, fixedNoise, runInfo, within };
}

/** The counters and files a run starts from. */
export interface RunStart {
  runDir: string;
  /** config.json's contents (undefined on ranks other than 0 of a new data-parallel run). */
  runInfo: RunInfo | undefined;
  epoch: number;
  globalStep: number;
  shuffleSeed: number;
  /** A resume's stored fixed noise, on the device. */
  fixedNoise?: Tensor;
  /** A resume's count of G updates its EMA of G has followed (step spec ema). */
  emaUpdates?: number;
  within: ResumedRun['within'];
}

/**
 * Opens the run's folder: for a resume, `run.resumed`'s checkpoint loaded into `models` (resumeRun);
 * else a new `<saveDir>/run-<n>` with the run's shuffle seed (its seed, or a random one), which the ranks
 * of a data-parallel run take from rank 0 (agreeAtStart, a collective). `dataset`: config.json's
 * description of the images; `runInfo` is undefined on ranks other than 0 of a new run.
 */
export async function openRun(
  run: ResolvedRun,
  models: TrainingModels,
  where: { processGroup?: ProcessGroup; dataset: RunInfo['dataset'] },
): Promise<RunStart> {
  const { config, written, resumed } = run;
  const pg = where.processGroup;
  const limit = run.limit ?? null;
  const ranks = { rank: pg?.rank ?? 0, worldSize: pg?.worldSize ?? 1 };
  let start: Omit<RunStart, 'runDir'> & { runDir?: string }; // no folder yet on ranks other than 0 of a new run
  if (resumed && config.resume) {
    const info = { ...resumed.info, limit, dataset: where.dataset };
    const r = resumeRun({ dir: config.resume, info, state: resumed.state, config, written }, models, ranks);
    const { epoch, globalStep, shuffleSeed } = r.state;
    const emaUpdates = r.state.emaUpdates;
    start = { runDir: config.resume, runInfo: r.runInfo, epoch, globalStep, shuffleSeed, fixedNoise: r.fixedNoise, within: r.within, emaUpdates };
  } else {
    const shuffleSeed = config.seed ?? randomSeed();
    start = { runInfo: undefined, epoch: 0, globalStep: 0, shuffleSeed, within: null };
    if (ranks.rank === 0) {
      start.runDir = createRunDir(config.saveDir);
      const { dataset } = where;
      start.runInfo = newRunInfo(start.runDir, config, { shuffleSeed, limit, dataset, written, worldSize: ranks.worldSize, backend: pg?.backend });
      startLosses(start.runDir);
    }
  }
  if (!pg) return { ...start, runDir: start.runDir! };
  const folder = resumed ? 0 : Number(path.basename(start.runDir ?? 'run-0').slice(4));
  const [shuffleSeed, agreedFolder] = await agreeAtStart(pg, config, where.dataset.images, [start.shuffleSeed, folder]);
  return { ...start, shuffleSeed, runDir: resumed ? start.runDir! : path.join(config.saveDir, `run-${agreedFolder}`) };
}
