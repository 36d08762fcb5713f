/**
 * Restoring a checkpoint into live objects: its weights, optimizer states and RNG states loaded in
 * place (a GanStep built over them sees the loaded values), and the whole of a resume (checked, loaded,
 * freed). Reading and writing the files is checkpoint.ts.
 */
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type Checkpoint, CHECKPOINT_FILES, checkFiniteWeights, loadCheckpoint, type TrainerState } from './checkpoint';
import { CheckpointError } from './errors';
import { type TrainingModels } from './training-state';

/** What a checkpoint is restored into: the models and optimizers (the EMA of G where the run keeps one), their device, and a data-parallel rank. */
type RestoreTarget = TrainingModels & { device?: Device; rank?: number };

/**
 * Loads a checkpoint's weights, optimizer states and RNG state into live objects (in place, so a
 * GanStep built over them sees the loaded values). The CUDA RNG state is restored when `device`
 * is CUDA and the checkpoint has one.
 */
export function restoreCheckpoint(ckpt: Checkpoint, into: RestoreTarget): void {
  // the RNG states first: the one part whose validity only LibTorch can judge, named by its file
  const rngFile = ckpt.files[CHECKPOINT_FILES.rng] ?? CHECKPOINT_FILES.rng;
  const rank = into.rank ?? 0;
  const cpu = ckpt.rng.ranks?.[rank] ?? (rank === 0 ? ckpt.rng.cpu : undefined);
  if (!cpu) throw new CheckpointError(`${rngFile}: no RNG state of rank ${rank} (the checkpoint was written by a run of ${ckpt.state.worldSize ?? 1} rank(s))`);
  setRngStateFrom(cpu, 'cpu', rngFile, rank ? `rng.cpu.rank${rank}` : 'rng.cpu');
  // a rank's GPU state where the run was data-parallel on CUDA; a rank without one keeps its seeded stream
  const cuda = ckpt.rng.cudaRanks?.[rank] ?? (rank === 0 ? ckpt.rng.cuda : undefined);
  if (cuda && into.device?.startsWith('cuda')) setRngStateFrom(cuda, 'cuda', rngFile, rank ? `rng.cuda.rank${rank}` : 'rng.cuda');
  into.generator.loadStateDict(ckpt.generator);
  if (into.generatorEma) {
    if (!ckpt.generatorEma)
      throw new CheckpointError(
        `${ckpt.files[CHECKPOINT_FILES.generator]}: the run keeps an EMA of G (step spec ema) but its checkpoint has no ${CHECKPOINT_FILES.generatorEma}`,
      );
    into.generatorEma.loadStateDict(ckpt.generatorEma);
  }
  into.discriminator.loadStateDict(ckpt.discriminator);
  into.optimizerG.loadStateDict(ckpt.optimizerG);
  into.optimizerD.loadStateDict(ckpt.optimizerD);
}

function setRngStateFrom(state: Tensor, device: Device, file: string, key: string): void {
  try {
    torch.setRngState(state, device);
  } catch (e) {
    throw new CheckpointError(`${file}: ${key} is not a usable ${device} generator state (${(e as Error).message})`);
  }
}

/** Frees a loaded checkpoint's weights and RNG states (copied in place by restoreCheckpoint; the optimizers may hold on to their state tensors). */
function freeLoaded(ckpt: Checkpoint): void {
  for (const t of [...Object.values(ckpt.generator), ...Object.values(ckpt.generatorEma ?? {}), ...Object.values(ckpt.discriminator), ckpt.rng.cpu])
    t.dispose();
  ckpt.rng.cuda?.dispose();
  for (const t of ckpt.rng.ranks?.slice(1) ?? []) t.dispose();
  for (const t of ckpt.rng.cudaRanks?.slice(1) ?? []) t.dispose();
}

/**
 * Resuming a run: loads its checkpoint into live models and optimizers (restoreCheckpoint), frees
 * the loaded copies, and returns the state and the stored fixed noise (on `into.device`).
 */
export function resumeCheckpoint(runDir: string, into: RestoreTarget & { device: Device }): { state: TrainerState; fixedNoise?: Tensor } {
  const ckpt = loadCheckpoint(runDir, { device: into.device });
  try {
    checkFiniteWeights(ckpt.generator, ckpt.files[CHECKPOINT_FILES.generator]);
    if (ckpt.generatorEma) checkFiniteWeights(ckpt.generatorEma, ckpt.files[CHECKPOINT_FILES.generatorEma]);
    checkFiniteWeights(ckpt.discriminator, ckpt.files[CHECKPOINT_FILES.discriminator]);
    restoreCheckpoint(ckpt, into);
  } catch (e) {
    freeLoaded(ckpt);
    ckpt.fixedNoise?.dispose();
    throw e;
  }
  freeLoaded(ckpt);
  const stored = ckpt.fixedNoise;
  const fixedNoise = stored?.to(into.device);
  if (stored && fixedNoise !== stored) stored.dispose();
  return { state: ckpt.state, fixedNoise };
}
