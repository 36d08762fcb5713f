import { type QualityRow } from '../quality/epoch-quality';
/** The Trainer's options, events and result. */
import { type DownloadProgress } from '../data/download';
import { type ImageDataset } from '../data/mnist';
import { type ProcessGroup } from '../distributed/index';
import { type StepResult } from '../gan/gan-step';
import { type Device } from '../tensor/dtype';

/** A Trainer's options; dataset, limit, onDownload and onWarning are the resolution's (resolveRun, Trainer.create). */
export interface TrainerOptions {
  /** Training images to use instead of loading config.data (the preset is adapted to their channels, size and classes). */
  dataset?: ImageDataset;
  /** Use only the first `limit` images (quick runs, tests). On resume, defaults to the run's. */
  limit?: number;
  /** Dataset download progress while the run is resolved (only when the data is not found locally and config.data.download is on). */
  onDownload?: (p: DownloadProgress) => void;
  /** Warnings while the run is resolved (e.g. a folder's skipped images); the Trainer's own are its 'warning' events. */
  onWarning?: (e: Error) => void;
  /** Report progress (the 'step' event, TensorBoard step scalars) every n steps. Default: about 200 reports per epoch, at most every 50 steps. */
  progressEvery?: number;
  /**
   * Train as one rank of a data-parallel run over this group (`dist.group.WORLD`): every rank loads the
   * data and builds the models, gradients are averaged across ranks each update, each rank trains on its
   * shard of every epoch with its own noise stream, and rank 0 alone writes the run folder (checkpoints
   * hold every rank's RNG state). The batch size is per rank. CPU (Gloo) only.
   */
  processGroup?: ProcessGroup;
}

/** A progress report inside an epoch (compatible with the CLI's TrainingProgress.step). */
export interface TrainerStepEvent extends StepResult {
  epoch: number;
  epochs: number;
  /** Steps done in this epoch (1..stepsPerEpoch). */
  step: number;
  stepsPerEpoch: number;
  /** Steps done in the whole run. */
  globalStep: number;
  imagesPerSec: number;
}

/** Files written at the end of an epoch. */
export interface EpochFiles {
  samples?: string;
  checkpoint?: string;
  lossPlot?: string;
  /** metrics.csv, when this epoch was evaluated. */
  metrics?: string;
}

/** The end of an epoch (compatible with the CLI's TrainingProgress.epochEnd). */
export interface TrainerEpochEvent extends StepResult {
  epoch: number;
  epochs: number;
  steps: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  globalStep: number;
  /** The sample grid written for this epoch, if any. */
  samplePath?: string;
  /** The quality metrics of this epoch (config evalEvery), if it was evaluated. */
  quality?: QualityRow;
  files: EpochFiles;
}

/** Where a run trains (the 'device' event, Trainer.deviceInfo, TrainResult.device). */
export interface TrainDevice {
  /** The device the data and models are on: 'cpu' or 'cuda:N'. */
  name: Device;
  /**
   * Set when device 'auto' (the default) trains on the CPU: why CUDA is not used, in the addon's words,
   * e.g. "CUDA is not available: no NVIDIA driver was found (libcuda.so.1 could not be loaded)".
   */
  fallback?: string;
}

/** Emitted once by init(): the device, and the CUDA graph's state before training (GanStep.cudaGraph). */
export interface TrainerDeviceEvent extends TrainDevice {
  cudaGraph: string;
}

export interface TrainerCheckpointEvent {
  runDir: string;
  /** Path of trainer.json. */
  path: string;
  epoch: number;
  globalStep: number;
  interrupted: { epoch: number; steps: number } | null;
}

export interface TrainerEvents {
  step: [TrainerStepEvent];
  epoch: [TrainerEpochEvent];
  checkpoint: [TrainerCheckpointEvent];
  /** Something that did not stop training failed (e.g. rendering the loss plot). */
  warning: [Error];
  /**
   * Dataset download progress: only from the deprecated `new Trainer(config)` + init(), which resolves
   * the config itself (without `onDownload`); Trainer.create and resolveRun take `onDownload`.
   */
  download: [DownloadProgress];
  /** The device the run trains on, with the reason when 'auto' fell back to the CPU (emitted by init()). */
  device: [TrainerDeviceEvent];
}

export interface TrainResult {
  runDir: string;
  /** True when the signal stopped training (a checkpoint was written). */
  aborted: boolean;
  /** First epoch trained by this call, and the last epoch completed. */
  firstEpoch: number;
  epoch: number;
  epochs: number;
  /** Steps and images in this call (completed epochs only), over `seconds` of training. */
  steps: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  globalStep: number;
  /** The last completed epoch's mean losses (undefined when none was completed). */
  finalDLoss?: number;
  finalGLoss?: number;
  /** Set when stopped inside an epoch. */
  interrupted: { epoch: number; steps: number } | null;
  /** The last evaluation's figures (config evalEvery), when there was one. */
  quality?: QualityRow;
  /** Where it trained, and why on the CPU when device 'auto' fell back to it. */
  device: TrainDevice;
  /**
   * The CUDA graph's state at the end (GanStep.cudaGraph): "replaying (batch N)", "warming up", or
   * "off: <why>" (on the CPU "off: not on a CUDA device").
   */
  cudaGraph: string;
  files: {
    config: string;
    checkpoint?: string;
    lossPlot?: string;
    report?: string;
    samples?: string;
    tensorboard?: string;
  };
}
