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
import { concatSteps, stepMeans } from '../store/run-dir';

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
  /** A progress report; if it throws, the epoch stops and the error is thrown from runEpoch. */
  onProgress: (p: EpochProgress) => void;
  /** Per-step records of the steps this call ran ([dLoss, gLoss, dReal, dFake] each), also when stopped. */
  record: (perStep: Float32Array) => void;
}

/** A completed epoch (`ran`: what this call trained), or one stopped at a step boundary after `stopped` of its steps. */
export type EpochOutcome = { done: EpochResult; ran: { steps: number; images: number; seconds: number } } | { stopped: number };

export async function runEpoch(e: EpochRun): Promise<EpochOutcome> {
  const startStep = e.within?.steps ?? 0;
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
