/**
 * One epoch of a run through GanStep.trainEpoch: its own shuffle seed, the continuation of an epoch
 * interrupted before a resume (same order, at its next batch), per-step records handed on as they
 * come, and the whole epoch's means over all its steps, those before the resume included, so that a
 * resumed epoch reports exactly what the uninterrupted one does.
 */
import { createHash } from 'node:crypto';
import { isEpochAbort, type EpochProgress, type EpochResult, type GanStep } from '../gan/gan-step';
import { type Tensor } from '../tensor/tensor';
import { type PixelRange } from '../util/pixels';
import { type Preset } from '../gan/presets';
import { concatSteps, stepMeans } from '../store/run-dir';
import { type RunLog } from './run-log';
import { type TrainerStepEvent } from './trainer-events';

/** The per-epoch shuffle seed: a 31-bit hash of the run's base seed and the epoch. */
export function shuffleSeedFor(base: number, epoch: number): number {
  return createHash('sha256').update(`libtorch-gan:${base}:${epoch}`).digest().readUInt32LE(0) & 0x7fffffff;
}

export interface EpochRun {
  gan: GanStep;
  /** uint8 images [N, C, H, W] on the models' device. */
  data: Tensor;
  /** Their labels (conditional presets), else null. */
  labels: Tensor | null;
  batchSize: number;
  /** Ranks training data-parallel (1: one process); each trains on its shard of ceil(N / ranks) images. */
  ranks: number;
  normalize: PixelRange;
  seed: number;
  progressEvery: number;
  /** Resuming inside this epoch: the steps done before the stop and their records (null when lost). */
  within: { steps: number; perStep: Float32Array | null } | null;
  signal?: AbortSignal;
  /** A progress report; if it throws, the epoch stops and the error is thrown from fusedEpoch. */
  onProgress: (p: EpochProgress) => void;
  /** Per-step records of the steps this call ran ([dLoss, gLoss, dReal, dFake] each), also when stopped. */
  record: (perStep: Float32Array) => void;
}

/** A completed epoch (`ran`: what this call trained), or one stopped at a step boundary after `stopped` of its steps. */
export type EpochOutcome = { done: EpochResult; ran: { steps: number; images: number; seconds: number } } | { stopped: number };

/** One epoch through GanStep.trainEpoch, continuing one stopped inside (`within`); a listener error is thrown here. */
export async function fusedEpoch(e: EpochRun): Promise<EpochOutcome> {
  const startStep = e.within?.steps ?? 0;
  // resumed inside an epoch: D-only steps (dSteps > 1) report the G loss of the run's last step, as before
  if (startStep > 0 && e.within?.perStep) e.gan.lastGLoss = e.within.perStep[(startStep - 1) * 4 + 1];
  // A listener that throws inside a progress report (called from the native side) stops the epoch
  // through this controller; its error is then thrown here.
  const internal = new AbortController();
  let listenerError: unknown;
  const stop = e.signal ? AbortSignal.any([e.signal, internal.signal]) : internal.signal;
  let r: EpochResult;
  try {
    // data-parallel ranks never stop alone: trainEpoch stops them all at one step (the ranks vote each step)
    if (stop.aborted && e.ranks === 1) return { stopped: startStep };
    r = await e.gan.trainEpoch(e.data, {
      batchSize: e.batchSize,
      labels: e.labels ?? undefined,
      shuffle: true,
      seed: e.seed,
      normalize: e.normalize,
      progressEvery: e.progressEvery,
      recordSteps: true,
      startStep,
      signal: stop,
      onProgress: (p) => {
        try {
          e.onProgress(p);
        } catch (err) {
          listenerError ??= err;
          internal.abort();
        }
      },
    });
  } catch (err) {
    if (listenerError !== undefined) throw listenerError;
    if (!isEpochAbort(err)) throw err;
    // Stopped at a step boundary: keep the steps done (losses.csv, then the checkpoint) to resume from.
    if (err.perStep) e.record(err.perStep);
    return { stopped: startStep + (err.completedSteps ?? 0) };
  }
  if (listenerError !== undefined) throw listenerError;
  const perStep = r.perStep!;
  e.record(perStep);
  const all = e.within?.perStep ? concatSteps(e.within.perStep, perStep) : e.within ? null : perStep;
  const done = {
    ...r,
    ...(all ? stepMeans(all) : {}),
    steps: startStep + r.steps,
    images: (Math.min(Math.ceil(e.data.shape[0] / e.ranks), startStep * e.batchSize) + r.images) * e.ranks,
  };
  done.imagesPerSec = r.imagesPerSec * e.ranks; // every rank's images
  return { done, ran: { steps: r.steps, images: r.images * e.ranks, seconds: r.seconds } };
}

/**
 * Epoch `epoch` of a Trainer's run after `globalStep` steps (`within`: resuming inside it): fusedEpoch with
 * the run's step records (losses.csv, TensorBoard) and its step events. Returns the global step after it,
 * and the epoch's result or where it stopped (null: before its first step).
 */
export async function loggedEpoch(r: {
  gan: GanStep;
  data: Tensor;
  labels: Tensor | null;
  preset: Preset;
  ranks: number;
  log: RunLog | null;
  epoch: number;
  globalStep: number;
  seed: number;
  /** Steps between progress reports (default: about 200 reports per epoch, at most every 50 steps). */
  progressEvery: number | undefined;
  within: { steps: number; perStep: Float32Array | null } | null;
  signal?: AbortSignal;
  onStep: (e: TrainerStepEvent) => void;
}): Promise<
  | { globalStep: number; done: EpochResult; ran: { steps: number; images: number; seconds: number } }
  | { globalStep: number; stopped: { epoch: number; steps: number } | null }
> {
  const { preset, epoch, ranks } = r;
  const stepsBefore = r.globalStep - (r.within?.steps ?? 0); // global step before the epoch's first step
  const images = r.data.shape[0];
  const steps = Math.ceil(Math.ceil(images / ranks) / preset.batchSize);
  const t0 = performance.now();
  const outcome = await fusedEpoch({
    ...r,
    batchSize: preset.batchSize,
    normalize: preset.normalize,
    progressEvery: r.progressEvery !== undefined ? Math.max(1, Math.floor(r.progressEvery)) : Math.max(1, Math.min(50, Math.round(steps / 200))),
    onProgress: (p) => {
      const globalStep = stepsBefore + p.step;
      const elapsed = (performance.now() - t0) / 1000;
      const imagesPerSec = elapsed > 0 ? Math.min(p.step * preset.batchSize * ranks, images) / elapsed : 0;
      r.log?.step(globalStep, p, imagesPerSec);
      const { dLoss, gLoss, dReal, dFake } = p;
      r.onStep({ epoch, epochs: preset.epochs, step: p.step, stepsPerEpoch: p.totalSteps, globalStep, dLoss, gLoss, dReal, dFake, imagesPerSec });
    },
    record: (per) => r.log?.recordSteps(epoch, r.globalStep, per), // the steps this call runs come after globalStep
  });
  if ('stopped' in outcome) return { globalStep: stepsBefore + outcome.stopped, stopped: outcome.stopped > 0 ? { epoch, steps: outcome.stopped } : null };
  return { globalStep: stepsBefore + outcome.done.steps, ...outcome };
}
