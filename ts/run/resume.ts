/**
 * Continuing a run: its checkpoint loaded into the models built for it, what config.json says next,
 * and the steps of an epoch it was stopped inside. (The config it continues with: config/merge.ts.)
 */
import { type Tensor } from '../tensor/tensor';
import { removeOrphanedTempFiles, type TrainerState } from '../store/checkpoint';
import { resumeCheckpoint } from '../store/checkpoint-restore';
import { type TrainingModels } from '../store/training-state';
import { ConfigError } from '../config/errors';
import { type ResolvedConfig } from '../config/config';
import { readEpochSteps, resumedRunInfo, type RunInfo } from '../store/run-dir';

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
