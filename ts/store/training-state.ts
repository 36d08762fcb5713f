/** What a checkpoint is made of: the training state a Trainer hands the store, one value. */
import { type Module } from '../nn/module';
import { type Optimizer } from '../optim/optimizer';
import { type Tensor } from '../tensor/tensor';
import { type RngStates, saveCheckpoint } from './checkpoint';

/** The models and optimizers a checkpoint stores (and a resume loads into, in place). */
export interface TrainingModels {
  generator: Module;
  discriminator: Module;
  optimizerG: Optimizer;
  optimizerD: Optimizer;
  /** The EMA of G (step spec `ema`), or null. */
  generatorEma?: Module | null;
}

/** A training run's state at a step boundary: everything its checkpoint holds. */
export interface TrainingState {
  runDir: string;
  models: TrainingModels;
  /** Noise of the sample grids (kept so a resumed run's grids continue the same images). */
  fixedNoise: Tensor;
  /** Epochs completed, optimizer steps taken, and the base of the per-epoch shuffle seeds. */
  epoch: number;
  globalStep: number;
  shuffleSeed: number;
  /** The run's preset name, device and seed (undefined: not seeded). */
  preset: string;
  device: string;
  seed: number | undefined;
  /** Training images (of all ranks). */
  images: number;
  worldSize: number;
  /** With an EMA of G: the G updates it has followed. */
  emaUpdates?: number;
}

/**
 * Writes the state's checkpoint into its run folder. `interrupted` marks a mid-epoch checkpoint; `rng`:
 * the RNG states to store (default this process's). Returns trainer.json's path.
 */
export function saveTrainingState(s: TrainingState, interrupted: { epoch: number; steps: number } | null, rng?: RngStates): string {
  return saveCheckpoint(s.runDir, {
    rng,
    ...s.models,
    fixedNoise: s.fixedNoise,
    state: {
      epoch: s.epoch,
      globalStep: s.globalStep,
      preset: s.preset,
      device: s.device,
      seed: s.seed ?? null,
      shuffleSeed: s.shuffleSeed,
      images: s.images,
      interrupted,
      ...(s.worldSize > 1 ? { worldSize: s.worldSize } : {}),
      ...(s.emaUpdates !== undefined ? { emaUpdates: s.emaUpdates } : {}),
    },
  }).path;
}
