/**
 * Checkpoints of a training run, written into the run folder:
 *
 *   generator.safetensors      G's state dict (PyTorch names: '0.weight', '0.1.running_mean', ...)
 *   generator_ema.safetensors  the EMA of G's state dict (step spec `ema` only), which samples and exports use
 *   discriminator.safetensors  D's state dict
 *   optimizer_g.safetensors    G's optimizer: state tensors as 'state.<i>.<name>' (e.g. 'state.0.exp_avg');
 *   optimizer_d.safetensors      hyper-parameters, param groups and step counts in the metadata (JSON)
 *   rng.safetensors            'rng.cpu' (torch.getRngState()), 'rng.cuda' on CUDA, 'fixed_noise'
 *   trainer.json               epoch, global step, preset, seeds, and the size and SHA-256 of each file above
 *
 * trainer.json is the commit record: it is written last, and a checkpoint is what it describes.
 * Writing is crash-safe: every file is first written completely to a temporary file (fsync'ed);
 * then the current files are hard-linked to '<name>.prev', the temporary files renamed over the
 * targets, and trainer.json replaced (temporary file + fsync + rename); finally the '.prev' links
 * are removed. A crash at any point leaves a loadable checkpoint: before trainer.json is replaced
 * it still describes the previous files, which are found either under their names or as '.prev'
 * (loadCheckpoint checks every file against the digests in trainer.json and takes whichever
 * matches), and afterwards it describes the new ones. Temporary files a writer killed mid-write
 * left behind are removed before each write and when the run is resumed (removeOrphanedTempFiles).
 *
 * Nothing here prints or touches process state; errors are thrown as CheckpointError.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Module } from '../nn/module';
import { type Optimizer, type OptimizerStateDict } from '../optim/optimizer';
import { type Device, isFloatingDtype } from '../tensor/dtype';
import * as safetensors from '../tensor/safetensors';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { ensureDir, fsyncDir, removeTempFiles, writeTempFile } from '../util/fs';
import { packageVersion } from '../util/package';
import { optimizerFromSafetensors, optimizerToSafetensors } from './optimizer-state';
import { CheckpointError } from './errors';
import { readRunJson } from './run-dir';
import { checkRunFile, TrainerStateSchema } from './schema';

export { CheckpointError } from './errors';
export { optimizerFromSafetensors, optimizerToSafetensors, OPTIMIZER_FORMAT } from './optimizer-state';

export const CHECKPOINT_FORMAT = 'libtorch-gan-checkpoint/1';

/** File names inside the run folder. */
export const CHECKPOINT_FILES = Object.freeze({
  generator: 'generator.safetensors',
  generatorEma: 'generator_ema.safetensors',
  discriminator: 'discriminator.safetensors',
  optimizerG: 'optimizer_g.safetensors',
  optimizerD: 'optimizer_d.safetensors',
  rng: 'rng.safetensors',
  trainer: 'trainer.json',
} as const);

export interface CheckpointFileInfo {
  bytes: number;
  sha256: string;
}

/** Contents of trainer.json. */
export interface TrainerState {
  format: typeof CHECKPOINT_FORMAT;
  /** Epochs completed (1-based count; 0 when interrupted during the first epoch). */
  epoch: number;
  /** Optimizer steps taken over the whole run (including those of an interrupted epoch). */
  globalStep: number;
  /** Preset name (the full effective preset is in the run's config.json). */
  preset: string;
  device: string;
  /** The run's RNG seed, or null when the run was not seeded. */
  seed: number | null;
  /** Base of the per-epoch shuffle seeds (see shuffleSeedFor). */
  shuffleSeed: number;
  /** Training images per epoch. */
  images: number;
  /**
   * Set when training was stopped inside an epoch: the weights include `steps` steps of epoch
   * `epoch`, which a resumed run trains again from its start.
   */
  interrupted: { epoch: number; steps: number } | null;
  /** The ranks of a data-parallel run (absent: 1); a resume needs as many. */
  worldSize?: number;
  /** With an EMA of G (generator_ema.safetensors): the G updates it has followed. */
  emaUpdates?: number;
  time: string;
  packageVersion: string;
  files: Record<string, CheckpointFileInfo>;
}

/**
 * Generator states: the CPU's ('rng.cpu'), CUDA's ('rng.cuda'), and in a data-parallel run every rank's
 * CPU state in rank order (ranks[0] is `cpu`; ranks r >= 1 are stored as 'rng.cpu.rank<r>'), and on CUDA
 * (NCCL) every rank's GPU state (cudaRanks[0] is `cuda`; r >= 1 stored as 'rng.cuda.rank<r>').
 */
export interface RngStates {
  cpu: Tensor;
  cuda?: Tensor;
  ranks?: Tensor[];
  cudaRanks?: Tensor[];
}

/** What a checkpoint holds, as tensors (on the device asked for) and plain data. */
export interface Checkpoint {
  state: TrainerState;
  generator: Record<string, Tensor>;
  /** The EMA generator's weights, when the run keeps one. */
  generatorEma?: Record<string, Tensor>;
  discriminator: Record<string, Tensor>;
  optimizerG: OptimizerStateDict;
  optimizerD: OptimizerStateDict;
  rng: RngStates;
  fixedNoise?: Tensor;
  /** The file each part was read from (a '.prev' path when a write was interrupted). */
  files: Record<string, string>;
}

/** Everything saveCheckpoint writes. */
export interface CheckpointParts {
  generator: Module;
  /** The EMA of G (step spec `ema`), written as generator_ema.safetensors. */
  generatorEma?: Module | null;
  discriminator: Module;
  optimizerG: Optimizer;
  optimizerD: Optimizer;
  /** RNG states to store; default: the CPU generator's, plus CUDA's when `state.device` is CUDA. */
  rng?: RngStates;
  fixedNoise?: Tensor;
  state: Omit<TrainerState, 'format' | 'files' | 'time' | 'packageVersion'> & { time?: string; packageVersion?: string };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The files whose temporary copies saveCheckpoint writes (each ~the size of its model). */
const CHECKPOINT_TEMP_TARGETS: readonly string[] = Object.values(CHECKPOINT_FILES);

/**
 * Removes the temporary files a writer killed during a write left in `runDir` (of `targets`,
 * default: of every file there and in samples/); returns their paths. All of them, not only those
 * whose writer's pid is gone: a run folder has one writer (the Trainer that created or resumed it),
 * which calls this before it writes, and a pid says nothing reliable here (the restarted trainer in
 * a container often gets the killed one's pid; writers in other pid namespaces are invisible).
 */
export function removeOrphanedTempFiles(runDir: string, targets?: readonly string[]): string[] {
  const removed = removeTempFiles(runDir, targets);
  if (!targets) removed.push(...removeTempFiles(path.join(runDir, 'samples')));
  return removed;
}

/**
 * Throws a CheckpointError naming `file` and the first floating-point tensor holding NaN or
 * infinite values (a run that diverged): images or training from such weights are meaningless.
 */
export function checkFiniteWeights(tensors: Record<string, Tensor>, file: string): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (!isFloatingDtype(t.dtype)) continue;
    // float64 as it is (narrowing could overflow to infinity); 16-bit floats fit in float32
    const values = t.dtype === 'float64' ? (torch.scope(() => (t.device === 'cpu' ? t : t.to('cpu')).toTypedArray()) as Float64Array) : t.toFloat32Array();
    let bad = 0;
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) bad++;
    if (bad) {
      throw new CheckpointError(
        `${file}: tensor ${JSON.stringify(name)} has ${bad} of ${values.length} values NaN or infinite: the run diverged before this checkpoint was written (train again, e.g. with a lower lr)`,
      );
    }
  }
}

/**
 * @internal The file operations saveCheckpoint uses, replaceable in tests to simulate a crash at
 * a given point (node:fs's own functions cannot be spied on).
 */
export const checkpointFs = {
  rename: (from: string, to: string): void => fs.renameSync(from, to),
  writeTemp: (dir: string, name: string, data: Uint8Array): string => writeTempFile(path.join(dir, name), data),
};

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Writes a checkpoint into `runDir` (see the top of this file for the protocol). Returns the path
 * of trainer.json and the state written. Throws (leaving the previous checkpoint loadable) when
 * any step fails.
 */
export function saveCheckpoint(runDir: string, parts: CheckpointParts): { path: string; state: TrainerState } {
  ensureDir(runDir, 'run folder');
  removeOrphanedTempFiles(runDir, CHECKPOINT_TEMP_TARGETS);
  // Serialize everything first (tensors copied to the CPU), so that nothing touches the folder
  // until all the bytes exist.
  const contents: [string, Buffer][] = torch.scope(() => {
    const gNames = parts.generator.namedParameters().map(([n]) => n);
    const dNames = parts.discriminator.namedParameters().map(([n]) => n);
    const optG = optimizerToSafetensors(parts.optimizerG.stateDict(), { type: parts.optimizerG.constructor.name, paramNames: gNames });
    const optD = optimizerToSafetensors(parts.optimizerD.stateDict(), { type: parts.optimizerD.constructor.name, paramNames: dNames });
    const meta = { format: 'pt', 'libtorch-gan.preset': parts.state.preset, 'libtorch-gan.epoch': String(parts.state.epoch) };
    const rng: Record<string, Tensor> = {};
    const cpu = parts.rng?.cpu ?? torch.getRngState('cpu');
    rng['rng.cpu'] = cpu;
    const cuda = parts.rng?.cuda ?? (parts.rng === undefined && parts.state.device.startsWith('cuda') ? torch.getRngState('cuda') : undefined);
    if (cuda) rng['rng.cuda'] = cuda;
    parts.rng?.ranks?.forEach((t, r) => {
      if (r > 0) rng[`rng.cpu.rank${r}`] = t;
    });
    parts.rng?.cudaRanks?.forEach((t, r) => {
      if (r > 0) rng[`rng.cuda.rank${r}`] = t;
    });
    if (parts.fixedNoise) rng.fixed_noise = parts.fixedNoise;
    return [
      [CHECKPOINT_FILES.generator, safetensors.save(parts.generator.stateDict(), meta)],
      ...(parts.generatorEma ? [[CHECKPOINT_FILES.generatorEma, safetensors.save(parts.generatorEma.stateDict(), meta)]] : []),
      [CHECKPOINT_FILES.discriminator, safetensors.save(parts.discriminator.stateDict(), meta)],
      [CHECKPOINT_FILES.optimizerG, safetensors.save(optG.tensors, optG.metadata)],
      [CHECKPOINT_FILES.optimizerD, safetensors.save(optD.tensors, optD.metadata)],
      [CHECKPOINT_FILES.rng, safetensors.save(rng, { format: 'libtorch-gan-rng/1' })],
    ] as [string, Buffer][];
  });

  const files: Record<string, CheckpointFileInfo> = {};
  for (const [name, bytes] of contents) files[name] = { bytes: bytes.byteLength, sha256: sha256(bytes) };
  const state: TrainerState = {
    format: CHECKPOINT_FORMAT,
    ...parts.state,
    time: parts.state.time ?? new Date().toISOString(),
    packageVersion: parts.state.packageVersion ?? packageVersion(),
    files,
  };
  const json = Buffer.from(`${JSON.stringify(state, null, 2)}\n`);

  // 1. temporary files, complete and fsync'ed
  const temps: [string, string][] = [];
  try {
    for (const [name, bytes] of contents) temps.push([name, checkpointFs.writeTemp(runDir, name, bytes)]);
    temps.push([CHECKPOINT_FILES.trainer, checkpointFs.writeTemp(runDir, CHECKPOINT_FILES.trainer, json)]);
  } catch (e) {
    for (const [, tmp] of temps) fs.rmSync(tmp, { force: true });
    throw e;
  }
  const pending = new Set(temps.map(([, tmp]) => tmp));
  try {
    // 2. keep the committed files reachable as '.prev' until the new trainer.json is in place
    let committed: TrainerState | null = null;
    try {
      committed = readTrainerState(runDir);
    } catch {
      committed = null; // no previous checkpoint to protect
    }
    for (const [name] of contents) {
      if (!committed?.files[name]) continue;
      const target = path.join(runDir, name);
      const prev = `${target}.prev`;
      let current: string | null;
      try {
        current = readVerified(runDir, name, committed).file;
      } catch {
        current = null; // already damaged: nothing to protect
      }
      if (current !== target) continue; // null, or the committed copy already is the '.prev'
      fs.rmSync(prev, { force: true });
      try {
        fs.linkSync(target, prev);
      } catch {
        fs.copyFileSync(target, prev);
      }
    }
    fsyncDir(runDir);
    // 3. the data files, then 4. trainer.json (the commit)
    for (const [name, tmp] of temps) {
      checkpointFs.rename(tmp, path.join(runDir, name));
      pending.delete(tmp);
    }
    fsyncDir(runDir);
  } finally {
    for (const tmp of pending) fs.rmSync(tmp, { force: true });
  }
  // 5. the previous files are no longer needed
  for (const [name] of contents) fs.rmSync(path.join(runDir, `${name}.prev`), { force: true });
  return { path: path.join(runDir, CHECKPOINT_FILES.trainer), state };
}

// ---------------------------------------------------------------------------------------------
// Reading

/** True when `runDir` holds a trainer.json. */
export function hasCheckpoint(runDir: string): boolean {
  return fs.existsSync(path.join(runDir, CHECKPOINT_FILES.trainer));
}

/** Reads and checks trainer.json (schema.ts); throws a CheckpointError naming the file, the key and the value. */
export function readTrainerState(runDir: string): TrainerState {
  const file = path.join(runDir, CHECKPOINT_FILES.trainer);
  const json = readRunJson<unknown>(file, () => `${runDir} ${fs.existsSync(runDir) ? 'has no checkpoint (trainer.json is missing)' : 'does not exist'}`);
  return checkRunFile<TrainerState>(file, json, TrainerStateSchema, {
    format: CHECKPOINT_FORMAT,
    what: 'a libtorch-gan checkpoint',
    makeError: (m) => new CheckpointError(m),
  });
}

function readVerified(runDir: string, name: string, state: TrainerState): { file: string; bytes: Buffer } {
  const want = Object.hasOwn(state.files, name) ? state.files[name] : undefined;
  if (!want) throw new CheckpointError(`${path.join(runDir, CHECKPOINT_FILES.trainer)} lists no ${name}`);
  const candidates = [path.join(runDir, name), path.join(runDir, `${name}.prev`)];
  for (const file of candidates) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch {
      continue;
    }
    if (bytes.byteLength === want.bytes && sha256(bytes) === want.sha256) return { file, bytes };
  }
  const exists = fs.existsSync(candidates[0]);
  throw new CheckpointError(
    exists
      ? `${candidates[0]} does not match trainer.json (size or SHA-256 differs): the checkpoint is damaged or was changed after it was written`
      : `${candidates[0]} is missing: the checkpoint is incomplete`,
  );
}

/**
 * The path holding the checkpoint's version of `name`: the file itself, or '<name>.prev' after an
 * interrupted write. Throws when neither matches the digest recorded in trainer.json.
 */
export function checkpointFile(runDir: string, name: string, state: TrainerState = readTrainerState(runDir)): string {
  return readVerified(runDir, name, state).file;
}

/** Loads a whole checkpoint, verifying every file against trainer.json. Tensors go to `device` (default CPU). */
export function loadCheckpoint(runDir: string, opts: { device?: Device } = {}): Checkpoint {
  const state = readTrainerState(runDir);
  const device = opts.device ?? 'cpu';
  const files: Record<string, string> = {};
  const read = (name: string, dev: Device = device) => {
    const { file, bytes } = readVerified(runDir, name, state);
    files[name] = file;
    return safetensors.loadWithMetadata(bytes, { device: dev, name: file });
  };
  const generator = read(CHECKPOINT_FILES.generator).tensors;
  const generatorEma = Object.hasOwn(state.files, CHECKPOINT_FILES.generatorEma) ? read(CHECKPOINT_FILES.generatorEma).tensors : undefined;
  const discriminator = read(CHECKPOINT_FILES.discriminator).tensors;
  const optimizerG = optimizerFromSafetensors(read(CHECKPOINT_FILES.optimizerG), CHECKPOINT_FILES.optimizerG);
  const optimizerD = optimizerFromSafetensors(read(CHECKPOINT_FILES.optimizerD), CHECKPOINT_FILES.optimizerD);
  const rngFile = read(CHECKPOINT_FILES.rng, 'cpu').tensors;
  if (!rngFile['rng.cpu']) throw new CheckpointError(`${files[CHECKPOINT_FILES.rng]}: no 'rng.cpu' tensor`);
  const ranks: Tensor[] = [rngFile['rng.cpu']];
  for (let r = 1; rngFile[`rng.cpu.rank${r}`]; r++) ranks.push(rngFile[`rng.cpu.rank${r}`]);
  const cudaRanks: Tensor[] = [];
  if (rngFile['rng.cuda']) cudaRanks.push(rngFile['rng.cuda']);
  for (let r = 1; cudaRanks.length === r && rngFile[`rng.cuda.rank${r}`]; r++) cudaRanks.push(rngFile[`rng.cuda.rank${r}`]);
  for (const key of Object.keys(rngFile).filter((k) => k.startsWith('rng.'))) {
    const t = rngFile[key];
    if (t && (t.dtype !== 'uint8' || t.shape.length !== 1)) {
      throw new CheckpointError(
        `${files[CHECKPOINT_FILES.rng]}: ${key}: expected a generator state (a 1-D uint8 tensor), got ${t.dtype} [${t.shape.join(', ')}]`,
      );
    }
  }
  return {
    state,
    generator,
    ...(generatorEma ? { generatorEma } : {}),
    discriminator,
    optimizerG,
    optimizerD,
    rng: { cpu: rngFile['rng.cpu'], cuda: rngFile['rng.cuda'], ranks, ...(cudaRanks.length > 1 ? { cudaRanks } : {}) },
    fixedNoise: rngFile.fixed_noise,
    files,
  };
}
