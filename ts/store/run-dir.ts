/**
 * A run folder `<saveDir>/run-<n>`, as the Trainer writes it:
 *
 *   config.json                 the resolved config, package and LibTorch versions, device, seeds, start time
 *   events.out.tfevents.*       TensorBoard: per-report scalars (loss/d, loss/g, D(x), D(G(z)), images_per_sec),
 *                               per-epoch scalars (epoch/*), the real images and the fixed-noise samples
 *   real.png                    the first 64 training images
 *   samples/epoch-NNN.png       8x8 grids of G's images from fixed noise, every `sampleEvery` epochs and at the last
 *   losses.csv                  every step's losses (step, epoch, d_loss, g_loss, d_real, d_fake)
 *   loss.png, loss.svg          the loss plot, every `saveEvery` epochs and at the end
 *   checkpoint files            every `saveEvery` epochs and at the end (see checkpoint.ts)
 *   report.html                 at the end
 *
 * This file has the folder itself, config.json (RunInfo) and losses.csv; checkpoints are in
 * checkpoint.ts, logs (TensorBoard, grids, plots) in run-log.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type LossPoint } from '../logging/plot';
import { info as runtimeInfo } from '../native/info';
import { ensureDir, FileError, writeFileAtomic } from '../util/fs';
import { type ResolvedConfig } from '../config/config';
import { checkRunFile, RunInfoSchema } from './schema';
import { CheckpointError } from './errors';

export const RUN_FORMAT = 'libtorch-gan-run/1';
export const LOSSES_FILE = 'losses.csv';
const LOSSES_HEADER = 'step,epoch,d_loss,g_loss,d_real,d_fake';

/** The run's config.json (see Trainer), with the effective preset under `config.preset`. */
export interface RunInfo {
  format: string;
  run: string;
  startTime: string;
  packageVersion: string;
  libtorchVersion: string;
  device: string;
  seed: number | null;
  shuffleSeed: number;
  limit: number | null;
  dataset: { name: string; images: number; source?: string };
  /** A data-parallel run: its backend and ranks (absent: one process). */
  distributed?: { backend: 'gloo' | 'nccl'; worldSize: number };
  config: ResolvedConfig;
  runConfig: unknown;
  /** One entry per resumption: when, after which epoch, and the config given to it. */
  resumes: { time: string; fromEpoch: number; packageVersion: string; runConfig?: unknown }[];
}

/**
 * Creates the next free run folder `<saveDir>/run-<n>` (n = 1 + the highest existing number),
 * with a non-recursive mkdir so that concurrent runs never share a folder. Returns its path.
 * A save folder that cannot be created or written is a FileError naming it (util/fs.ts ensureDir).
 */
export function createRunDir(saveDir: string): string {
  ensureDir(saveDir, 'save folder');
  let n = 1;
  for (const name of fs.readdirSync(saveDir)) {
    const m = /^run-(\d+)$/.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  for (; ; n++) {
    const dir = path.join(saveDir, `run-${n}`);
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new FileError(`cannot create run folder ${dir}: ${(e as Error).message}`, code, dir, e);
    }
  }
}

/**
 * Reads and parses a JSON file of a run folder; every failure is a CheckpointError naming the file.
 * `missing` words the error when the file does not exist.
 */
export function readRunJson<T>(file: string, missing: () => string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CheckpointError(code === 'ENOENT' ? missing() : `${file}: cannot read (${code ?? (e as Error).message})`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CheckpointError(`${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads and checks `<runDir>/config.json` (schema.ts); throws a CheckpointError naming the file, the key and the value. */
export function readRunInfo(runDir: string): RunInfo {
  const file = path.join(runDir, 'config.json');
  const json = readRunJson<unknown>(file, () =>
    fs.existsSync(runDir) ? `${runDir} is not a run folder (config.json is missing)` : `run folder ${runDir} does not exist`,
  );
  return checkRunFile<RunInfo>(file, json, RunInfoSchema, { format: RUN_FORMAT, what: 'a libtorch-gan run config', makeError: (m) => new CheckpointError(m) });
}

/**
 * The files that mark a run folder, with the stem of the format each holds (any version counts:
 * a run of a later format is still a run): config.json (RUN_FORMAT) and trainer.json (checkpoint.ts
 * CHECKPOINT_FORMAT, named by its stem here to keep checkpoint.ts above this file).
 */
const RUN_MARKERS: readonly (readonly [file: string, formatStem: string])[] = [
  ['config.json', RUN_FORMAT.replace(/\d+$/, '')],
  ['trainer.json', 'libtorch-gan-checkpoint/'],
];
/** A marker larger than this is no run's (config.json holds a preset: kilobytes). */
const MARKER_MAX_BYTES = 4 << 20;

/** A regular file's stats (symbolic links followed), or null for anything else or nothing. */
function regularFile(file: string): fs.Stats | null {
  try {
    const st = fs.statSync(file);
    return st.isFile() ? st : null;
  } catch {
    return null;
  }
}

/**
 * Whether `dir` is a run folder: its config.json or trainer.json is a libtorch-gan run config or
 * checkpoint record, or (a damaged one) either sits beside a generator.safetensors. Only regular files
 * are read (never a FIFO or a device), at most a few MB.
 */
export function isRunFolder(dir: string): boolean {
  let markers = 0;
  for (const [name, stem] of RUN_MARKERS) {
    const file = path.join(dir, name);
    const st = regularFile(file);
    if (!st) continue;
    markers++;
    if (st.size > MARKER_MAX_BYTES) continue;
    try {
      const format = (JSON.parse(fs.readFileSync(file, 'utf8')) as { format?: unknown } | null)?.format;
      if (typeof format === 'string' && format.startsWith(stem)) return true;
    } catch {
      // not JSON: a damaged marker, judged by the checkpoint beside it
    }
  }
  return markers > 0 && regularFile(path.join(dir, 'generator.safetensors')) !== null;
}

/** The nearest run folder holding `file` (its folder or one above), or null. `file` should be absolute and resolved. */
export function enclosingRunFolder(file: string): string | null {
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    if (isRunFolder(dir)) return dir;
    if (path.dirname(dir) === dir) return null;
  }
}

function runtimeVersions(): { packageVersion: string; libtorchVersion: string } {
  try {
    const i = runtimeInfo();
    return { packageVersion: i.packageVersion, libtorchVersion: i.libtorch.version };
  } catch {
    return { packageVersion: 'unknown', libtorchVersion: 'unknown' };
  }
}

/** config.json of a new run in `runDir`. */
export function newRunInfo(
  runDir: string,
  config: ResolvedConfig,
  run: {
    shuffleSeed: number;
    limit: number | null;
    dataset: RunInfo['dataset'];
    /** The config as the caller wrote it (null when a resolved one was given). */
    written: unknown;
    worldSize?: number;
    backend?: 'gloo' | 'nccl';
  },
): RunInfo {
  return {
    format: RUN_FORMAT,
    run: path.basename(runDir),
    startTime: new Date().toISOString(),
    ...runtimeVersions(),
    device: config.device,
    seed: config.seed ?? null,
    shuffleSeed: run.shuffleSeed,
    limit: run.limit,
    dataset: run.dataset,
    ...(run.worldSize && run.worldSize > 1 ? { distributed: { backend: run.backend ?? 'gloo', worldSize: run.worldSize } } : {}),
    config,
    runConfig: run.written,
    resumes: [],
  };
}

/** config.json of a resumed run: as it now continues (epochs, device, ... may have changed), with the resumption listed. */
export function resumedRunInfo(stored: RunInfo, resume: { config: ResolvedConfig; fromEpoch: number; written: unknown }): RunInfo {
  const entry = {
    time: new Date().toISOString(),
    fromEpoch: resume.fromEpoch,
    packageVersion: runtimeVersions().packageVersion,
    runConfig: resume.written,
  };
  return { ...stored, device: resume.config.device, config: resume.config, resumes: [...(stored.resumes ?? []), entry] };
}

export function writeRunInfo(runDir: string, info: RunInfo): void {
  writeFileAtomic(path.join(runDir, 'config.json'), `${JSON.stringify(info, null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// losses.csv: step,epoch,d_loss,g_loss,d_real,d_fake, one line per step

/** Starts an empty losses.csv (its header). */
export function startLosses(runDir: string): void {
  writeFileAtomic(path.join(runDir, LOSSES_FILE), `${LOSSES_HEADER}\n`);
}

/**
 * Appends per-step records ([dLoss, gLoss, dReal, dFake] each) of `epoch`, numbered after global
 * step `stepsBefore`. Returns them as loss-plot points.
 */
export function appendLosses(runDir: string, epoch: number, stepsBefore: number, per: Float32Array): LossPoint[] {
  const points: LossPoint[] = [];
  let csv = '';
  for (let i = 0; i * 4 < per.length; i++) {
    const step = stepsBefore + i + 1;
    const [d, g, dr, df] = [per[i * 4], per[i * 4 + 1], per[i * 4 + 2], per[i * 4 + 3]];
    points.push({ step, epoch, dLoss: d, gLoss: g });
    csv += `${step},${epoch},${d},${g},${dr},${df}\n`;
  }
  if (csv) fs.appendFileSync(path.join(runDir, LOSSES_FILE), csv);
  return points;
}

function lossLines(runDir: string): string[] {
  try {
    return fs.readFileSync(path.join(runDir, LOSSES_FILE), 'utf8').split('\n').slice(1);
  } catch {
    return []; // no history: the plot starts at the resumed epoch
  }
}

/** Drops the lines after `globalStep` (steps after the checkpoint a run resumes from); returns the rest as points. */
export function truncateLosses(runDir: string, globalStep: number): LossPoint[] {
  const kept = [LOSSES_HEADER];
  const points: LossPoint[] = [];
  for (const line of lossLines(runDir)) {
    const [s, e, d, g] = line.split(',');
    if (!line || Number(s) > globalStep) continue;
    kept.push(line);
    points.push({ step: Number(s), epoch: Number(e), dLoss: Number(d), gLoss: Number(g) });
  }
  writeFileAtomic(path.join(runDir, LOSSES_FILE), `${kept.join('\n')}\n`);
  return points;
}

/** The per-step records of `epoch`'s steps first+1 .. first+count, or null when any is missing. */
export function readEpochSteps(runDir: string, epoch: number, first: number, count: number): Float32Array | null {
  const out = new Float32Array(count * 4);
  let found = 0;
  for (const line of lossLines(runDir)) {
    const [s, e, ...v] = line.split(',').map(Number);
    const i = s - first - 1;
    if (e !== epoch || i < 0 || i >= count || v.length !== 4) continue;
    out.set(v, i * 4);
    found++;
  }
  return found === count ? out : null;
}

/** Mean of each of the 4 columns of per-step records [dLoss, gLoss, dReal, dFake]. */
export function stepMeans(per: Float32Array): { dLoss: number; gLoss: number; dReal: number; dFake: number } {
  const sums = [0, 0, 0, 0];
  for (let i = 0; i < per.length; i++) sums[i % 4] += per[i];
  const n = Math.max(1, per.length / 4);
  return { dLoss: sums[0] / n, gLoss: sums[1] / n, dReal: sums[2] / n, dFake: sums[3] / n };
}

export function concatSteps(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
