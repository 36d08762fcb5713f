/** A Trainer's checkpoint: its state assembled for saveCheckpoint, and every rank's RNG state in a data-parallel run. */
import { type ProcessGroup } from '../distributed/index';
import { type Module } from '../nn/module';
import { type Optimizer } from '../optim/optimizer';
import { type Tensor } from '../tensor/tensor';
import { type RngStates, saveCheckpoint } from '../store/checkpoint';
import { type ResolvedConfig } from '../config/config';
import { gatherRngStates } from './data-parallel';

/** What a Trainer's checkpoint is made of (the Trainer itself is one). */
export interface TrainerSnapshot {
  runDir: string;
  generator: Module;
  discriminator: Module;
  optimizerG: Optimizer;
  optimizerD: Optimizer;
  fixedNoise: Tensor;
  epoch: number;
  globalStep: number;
  shuffleSeed: number;
  data: Tensor;
  config: ResolvedConfig;
  readonly worldSize: number;
}

/** Writes the snapshot's checkpoint into its run folder; `rng`: the RNG states to store (default this process's). Returns trainer.json's path. */
export function writeTrainerCheckpoint(t: TrainerSnapshot, interrupted: { epoch: number; steps: number } | null, rng?: RngStates): string {
  return saveCheckpoint(t.runDir, {
    rng,
    generator: t.generator,
    discriminator: t.discriminator,
    optimizerG: t.optimizerG,
    optimizerD: t.optimizerD,
    fixedNoise: t.fixedNoise,
    state: {
      epoch: t.epoch,
      globalStep: t.globalStep,
      preset: t.config.preset.name,
      device: t.config.device,
      seed: t.config.seed ?? null,
      shuffleSeed: t.shuffleSeed,
      images: t.data.shape[0],
      interrupted,
      ...(t.worldSize > 1 ? { worldSize: t.worldSize } : {}),
    },
  }).path;
}

/**
 * `write` given every rank's RNG states (gathered: a collective every rank takes part in), freed after:
 * the CPU's, and with NCCL each rank's GPU's.
 */
export async function withRankRngStates<T>(pg: ProcessGroup, write: (rng: RngStates) => T): Promise<T> {
  const { cpu, cuda } = await gatherRngStates(pg);
  try {
    return write({ cpu: cpu[0], ranks: cpu, ...(cuda ? { cuda: cuda[0], cudaRanks: cuda } : {}) });
  } finally {
    for (const t of [...cpu, ...(cuda ?? [])]) t.dispose();
  }
}
