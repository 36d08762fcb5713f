/** The fused GanStep's option, input and result types (gan-step.ts). */
import { type ProcessGroup } from '../distributed/index';
import { type Tensor } from '../tensor/tensor';
import { type PixelRange } from '../util/pixels';
import { type Precision } from './precision';

export interface StepResult {
  dLoss: number;
  gLoss: number;
  /** mean D(x) over the real batch */
  dReal: number;
  /** mean D(G(z)) over D's fake batch */
  dFake: number;
}

export interface EpochProgress extends StepResult {
  step: number;
  totalSteps: number;
}

export interface EpochOptions {
  batchSize: number;
  /** One class index per image (integer tensor [N] on the models' device): required by a conditional GAN, refused by others. */
  labels?: Tensor;
  shuffle?: boolean;
  dropLast?: boolean;
  /** Seed of the epoch's own shuffling generator (the global generator stays for noise and dropout). */
  seed?: number;
  /** For uint8 datasets: '[-1,1]' ((x/255 - 0.5) / 0.5, as ToTensor + Normalize(0.5, 0.5)) or '[0,1]'. */
  normalize?: PixelRange;
  /** Report progress every this many steps (default 50). */
  progressEvery?: number;
  /**
   * Called on the event loop every progressEvery steps. If it throws, the epoch stops at the next step
   * boundary and rejects with that error. The epoch's tensors are locked while it runs (see above).
   */
  onProgress?: (p: EpochProgress) => void;
  /** Return per-step losses as a [steps, 4] Float32Array (dLoss, gLoss, dReal, dFake). */
  recordSteps?: boolean;
  signal?: AbortSignal;
  /** Intra-op threads of the worker thread (default: the calling thread's, see torch.getNumThreads()). */
  threads?: number;
  /**
   * Resume an interrupted epoch: skip its first `startStep` batches (with the same `seed`, the same
   * order). Progress steps stay the epoch's; the result covers the steps this call ran.
   */
  startStep?: number;
}

/**
 * The rejection of an aborted epoch (name 'AbortError'): training stopped at a step boundary after
 * `completedSteps` steps of this call; `perStep` holds their losses when recordSteps was set.
 */
export interface EpochAbortError extends Error {
  name: 'AbortError';
  completedSteps: number;
  perStep?: Float32Array;
}

/** Whether `e` is the rejection of an aborted epoch. */
export function isEpochAbort(e: unknown): e is EpochAbortError {
  return e instanceof Error && e.name === 'AbortError';
}

export interface EpochResult extends StepResult {
  /** Steps run by this call (from startStep), images they took, and their mean losses. */
  steps: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  perStep?: Float32Array;
  /** The CUDA graph's state after the epoch (see GanStep.cudaGraph). */
  cudaGraph: string;
}

export interface GanStepOptions {
  /**
   * Sync-free updates, as PyTorch's `Adam(capturable=True)` / `fused=True`: optimizer step counts stay on
   * the device, Adam and SGD run PyTorch's fused kernels, and a non-finite loss skips that update (and
   * all after it) on the device instead of a host check each step; the error comes at the next progress
   * report (trainEpoch) or at once (step). CUDA graphs need it. Default: true on CUDA, false on CPU
   * (where the host check is free and the single-tensor optimizers match PyTorch's defaults bit for bit).
   */
  capturable?: boolean;
  /**
   * On CUDA, capture the whole step (D and G updates, noise included) as a CUDA graph after 3 warm-up
   * steps of one batch size and replay it (default true; needs capturable). It falls back to eager
   * steps when capture fails, and captures again when optimizer state or learning rates are changed.
   */
  cudaGraphs?: boolean;
  /**
   * MLP and DCGAN-style GANs (Linear, Conv2d, ConvTranspose2d, ReLU, LeakyReLU, Tanh, Sigmoid, BatchNorm1d/2d,
   * Flatten, Unflatten; Dropout in MLPs) with the BCE losses take the fast path: forward and backward
   * written out over buffers reused every step, D's real and fake batches through one product or
   * convolution per layer (BatchNorm still sees each alone), G's two fakes through one; convolutional nets
   * in channels-last memory format on the CPU. Default: on the CPU; on CUDA only with `true` (it runs there,
   * CUDA graph included, but has not been verified on a GPU yet; its dropout masks are then drawn with
   * bernoulli_, not CUDA dropout's fused kernel). `false` always takes the autograd path. `path` says which
   * path step() takes.
   */
  fastPath?: boolean;
  /**
   * Mixed precision: 'bf16' or 'fp16' run both updates' forward passes and losses under autocast
   * (torch.autocast's op lists; fp32 weights, gradients and updates, backward passes outside it), on the
   * autograd path and without CUDA graphs; 'fp16' needs CUDA, 'bf16' on CUDA a GPU of compute capability
   * 8.0. 'auto' picks bf16 where it is faster (a CPU with AMX) and fp32 elsewhere; `precision` and
   * `precisionReason` say what runs and why. Default 'fp32'.
   */
  precision?: Precision;
  /**
   * Data-parallel training over this group's ranks (`dist.group.WORLD`), as PyTorch's
   * DistributedDataParallel: rank 0's parameters, buffers and optimizer state go to every rank before
   * the first step; before each D and each G update every gradient is averaged across ranks (in 25 MiB
   * buckets), and the step's losses and D outputs with them, so every rank reports the means; trainEpoch
   * trains on this rank's shard of each epoch (as DistributedSampler). Every rank must run the same steps.
   * BatchNorm statistics stay per rank (no SyncBatchNorm); CUDA graphs are off.
   */
  processGroup?: ProcessGroup;
}

/** What step() may be given besides the real batch. */
export interface StepInputs {
  labels?: Tensor;
  zD?: Tensor;
  yD?: Tensor;
  zG?: Tensor;
  yG?: Tensor;
}
