/**
 * Continuing a run: the config it continues with (its stored config, with the run options given
 * now), its checkpoint loaded into the models built for it, what config.json says next, and the
 * steps of an epoch it was stopped inside.
 */
import { type Module } from '../nn/module';
import { type Optimizer } from '../optim/optimizer';
import { type Tensor } from '../tensor/tensor';
import { readTrainerState, removeOrphanedTempFiles, type TrainerState } from '../store/checkpoint';
import { resumeCheckpoint } from '../store/checkpoint-restore';
import { ConfigError, type ConfigIssue } from '../config/errors';
import { isResolved, parseConfig, resolveConfig, type CudaEnv, type ResolvedConfig, type RunConfig } from '../config/config';
import { readEpochSteps, readRunInfo, resumedRunInfo, type RunInfo } from '../store/run-dir';

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The config of a resumed run: the stored one, with the run options the caller gives (epochs,
 * device, threads, verbose, saveEvery, sampleEvery, evalEvery, evalN, data) applied. Keys that define the model or
 * the training (preset, batchSize, lr, betas, zDim, seed) must equal the stored ones.
 */
export function resumeConfig(stored: ResolvedConfig, given: RunConfig | ResolvedConfig, env: CudaEnv, resumeDir: string): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  const conflict = (key: string, was: unknown, now: unknown) =>
    issues.push({
      path: [key],
      message: `config.${key}: the run in ${resumeDir} was trained with ${JSON.stringify(was)}, got ${JSON.stringify(now)}; a resumed run keeps its ${key} (leave it out)`,
    });
  if (isResolved(given)) {
    if (given.preset.name !== stored.preset.name) conflict('preset', stored.preset.name, given.preset.name);
    const { epochs: _a, ...g } = given.preset;
    const { epochs: _b, ...s } = stored.preset;
    if (!issues.length && !same(g, s)) {
      issues.push({
        path: ['preset'],
        message: `config.preset: differs from the preset the run in ${resumeDir} was trained with (only epochs may change when resuming)`,
      });
    }
    if (issues.length) throw new ConfigError(issues);
    return {
      ...stored,
      preset: { ...stored.preset, epochs: given.preset.epochs },
      device: given.device,
      saveEvery: given.saveEvery,
      sampleEvery: given.sampleEvery,
      evalEvery: given.evalEvery,
      evalN: given.evalN,
      verbose: given.verbose,
      threads: given.threads,
      resume: resumeDir,
    };
  }
  const c = parseConfig(given);
  const p = stored.preset;
  if (c.preset !== undefined && c.preset !== p.name) conflict('preset', p.name, c.preset);
  if (c.batchSize !== undefined && c.batchSize !== p.batchSize) conflict('batchSize', p.batchSize, c.batchSize);
  if (c.lr !== undefined && c.lr !== p.optimizer.lr) conflict('lr', p.optimizer.lr, c.lr);
  if (c.betas !== undefined && !(p.optimizer.type === 'adam' && same(c.betas, p.optimizer.betas))) {
    conflict('betas', p.optimizer.type === 'adam' ? p.optimizer.betas : null, c.betas);
  }
  if (c.zDim !== undefined && c.zDim !== p.zDim) conflict('zDim', p.zDim, c.zDim);
  if (c.seed !== undefined && c.seed !== stored.seed) conflict('seed', stored.seed ?? null, c.seed);
  // device, data etc. are validated by resolving them against the stored preset
  let resolved: ResolvedConfig | undefined;
  try {
    resolved = resolveConfig({ ...c, preset: p.name, resume: undefined, betas: undefined, lr: undefined, zDim: undefined, batchSize: undefined }, env);
  } catch (e) {
    if (e instanceof ConfigError) issues.push(...e.issues);
    else throw e;
  }
  if (issues.length || !resolved) throw new ConfigError(issues);
  return {
    ...stored,
    preset: { ...p, epochs: c.epochs ?? p.epochs },
    device: resolved.device,
    saveEvery: c.saveEvery ?? stored.saveEvery,
    sampleEvery: c.sampleEvery ?? stored.sampleEvery,
    evalEvery: c.evalEvery ?? stored.evalEvery,
    evalN: c.evalN ?? stored.evalN,
    verbose: c.verbose ?? stored.verbose,
    threads: c.threads ?? stored.threads,
    data: c.data ? resolved.data : stored.data,
    resume: resumeDir,
  };
}

/**
 * The config a Trainer runs with: `given` resolved against the machine, or for a resume (`given.resume`)
 * the run's stored config with the options given now, together with that run's config.json and trainer.json.
 */
export function runConfig(
  given: RunConfig | ResolvedConfig,
  env: CudaEnv,
): { config: ResolvedConfig; stored: RunInfo | null; resumedFrom: TrainerState | null } {
  const dir = given.resume;
  if (!dir) return { config: isResolved(given) ? given : resolveConfig(given, env), stored: null, resumedFrom: null };
  const stored = readRunInfo(dir);
  const resumedFrom = readTrainerState(dir);
  return { config: resumeConfig(stored.config, given, env, dir), stored, resumedFrom };
}

export interface ResumedRun {
  state: TrainerState;
  /** The stored fixed noise of the sample grids, on the device (absent in older checkpoints). */
  fixedNoise?: Tensor;
  runInfo: RunInfo;
  /** Stopped inside the next epoch: its steps done and their records (null when losses.csv lacks them). */
  within: { epoch: number; steps: number; perStep: Float32Array | null } | null;
}

/**
 * Loads the run's checkpoint into `into` (in place) and returns what the run continues from. First
 * the temporary files of writes that a kill interrupted are removed (checkpoint files are tens of
 * MB each): the resuming trainer is the folder's one writer from here on (rank 0 of a data-parallel run;
 * each rank takes its own RNG state).
 */
export function resumeRun(
  runDir: string,
  stored: RunInfo,
  into: { config: ResolvedConfig; given: RunConfig | ResolvedConfig; generator: Module; discriminator: Module; optimizerG: Optimizer; optimizerD: Optimizer },
  ranks: { rank: number; worldSize: number } = { rank: 0, worldSize: 1 },
): ResumedRun {
  const { config, given } = into;
  const stateWorld = readTrainerState(runDir).worldSize ?? 1;
  if (stateWorld !== ranks.worldSize) {
    throw new ConfigError([
      {
        path: ['resume'],
        message: `config.resume: the run in ${runDir} was trained by ${stateWorld} rank(s); resume it with ${stateWorld}, not ${ranks.worldSize}`,
      },
    ]);
  }
  // rank 0 is the folder's one writer; the other ranks only read it
  if (ranks.rank === 0) removeOrphanedTempFiles(runDir);
  const { state, fixedNoise } = resumeCheckpoint(runDir, { ...into, device: config.device, rank: ranks.rank });
  const runInfo = resumedRunInfo(stored, { config, fromEpoch: state.epoch, given });
  const w = state.interrupted;
  const within =
    w && w.epoch === state.epoch + 1 && w.steps > 0 ? { ...w, perStep: readEpochSteps(runDir, w.epoch, state.globalStep - w.steps, w.steps) } : null;
  return { state, fixedNoise, runInfo, within };
}
