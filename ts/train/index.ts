/**
 * Training: the fused GAN step, presets and run configs, the Trainer (whole runs with run folders,
 * TensorBoard, sample grids, loss plots and checkpoints), checkpoints and sampling.
 * Nothing here prints, parses argv or installs process handlers.
 */
export { GanStep, type StepResult, type EpochOptions, type EpochResult, type EpochProgress } from './gan-step';
export type { GanStepSpec, NoiseSpec } from './step-spec';
export { presets, getPreset, countParameters, DEFAULT_PRESET, PRESET_NAMES, type Preset, type PresetName } from './presets';
export {
  parseConfig,
  loadConfigFile,
  resolveConfig,
  ConfigError,
  VERBOSE_LEVELS,
  type RunConfig,
  type ResolvedConfig,
} from './config';
export {
  Trainer,
  createRunDir,
  resumeConfig,
  shuffleSeedFor,
  RUN_FORMAT,
  SAMPLE_GRID_SIZE,
  type TrainerOptions,
  type TrainerEvents,
  type TrainerStepEvent,
  type TrainerEpochEvent,
  type TrainerCheckpointEvent,
  type TrainResult,
  type EpochFiles,
} from './trainer';
export {
  saveCheckpoint,
  loadCheckpoint,
  restoreCheckpoint,
  readTrainerState,
  checkpointFile,
  hasCheckpoint,
  optimizerToSafetensors,
  optimizerFromSafetensors,
  CheckpointError,
  CHECKPOINT_FILES,
  CHECKPOINT_FORMAT,
  OPTIMIZER_FORMAT,
  type Checkpoint,
  type CheckpointParts,
  type TrainerState,
} from './checkpoint';
export { sample, saveSamples, drawNoise, generate, readRunInfo, IMAGE_SIDE, type Samples, type SampleOptions, type RunInfo } from './sample';
