/**
 * Trainer: a whole training run as the seed scripts do it, plus what you need to watch it and
 * resume it. It loads the data once onto the device, builds G and D from the preset (after
 * torch.manualSeed(seed) when seeded), and trains epoch by epoch with the fused native step
 * (GanStep.trainEpoch), writing into a new run folder `<saveDir>/run-<n>`:
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
 * The Trainer never prints: it emits 'step', 'epoch', 'checkpoint', 'warning' and 'download' events.
 *
 * Reproducibility: noise and dropout come from the global generator, each epoch's shuffling from
 * its own seed derived from the run's (`shuffleSeedFor`). A checkpoint stores the generator's
 * state, so a run resumed from an epoch-end checkpoint on the CPU gives exactly the losses the
 * uninterrupted run gives. A checkpoint written when training was stopped inside an epoch keeps
 * that epoch's partial progress (its steps are in losses.csv); resuming continues that epoch at its
 * next batch, in the same order, so the resumed run, too, gives exactly the uninterrupted run's
 * losses, epoch means and weights.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DownloadProgress } from '../data/download';
import { MNIST, FashionMNIST, type ImageDataset } from '../data/mnist';
import { writeFileAtomic } from '../logging/fsutil';
import { saveImageGrid } from '../logging/grid';
import { writeLossPlot, type LossPoint } from '../logging/plot';
import { writeReport } from '../logging/report';
import { SummaryWriter } from '../logging/tensorboard';
import { info as runtimeInfo } from '../native/info';
import { fromSpec } from '../nn/from-spec';
import { type Module } from '../nn/module';
import { Adam, SGD, type Optimizer } from '../optim/optimizer';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import {
  CHECKPOINT_FILES,
  loadCheckpoint,
  readTrainerState,
  restoreCheckpoint,
  saveCheckpoint,
  type TrainerState,
} from './checkpoint';
import { ConfigError, parseConfig, resolveConfig, type ConfigIssue, type ResolvedConfig, type RunConfig } from './config';
import { GanStep, type EpochAbortError, type EpochProgress, type EpochResult, type StepResult } from './gan-step';
import { type OptimizerSpec, type Preset } from './presets';
import { drawNoise, IMAGE_SIDE, randomSeed, readRunInfo, type RunInfo, type Samples } from './sample';

export const RUN_FORMAT = 'libtorch-gan-run/1';
/** Images in the fixed-noise sample grids (8 x 8). */
export const SAMPLE_GRID_SIZE = 64;
const IMAGE_FEATURES = IMAGE_SIDE * IMAGE_SIDE;
const LOSSES_HEADER = 'step,epoch,d_loss,g_loss,d_real,d_fake';

export interface TrainerOptions {
  /** Training images to use instead of loading config.data (must be 28x28). */
  dataset?: ImageDataset;
  /** Use only the first `limit` images (quick runs, tests). On resume, defaults to the run's. */
  limit?: number;
  /** Report progress (the 'step' event, TensorBoard step scalars) every n steps. Default: about 200 reports per epoch, at most every 50 steps. */
  progressEvery?: number;
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
  files: EpochFiles;
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
  /** Dataset download progress (only when the data is not found locally and config.data.download is on). */
  download: [DownloadProgress];
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
  files: {
    config: string;
    checkpoint?: string;
    lossPlot?: string;
    report?: string;
    samples?: string;
    tensorboard?: string;
  };
}

/** The per-epoch shuffle seed: a 31-bit hash of the run's base seed and the epoch. */
export function shuffleSeedFor(base: number, epoch: number): number {
  return createHash('sha256').update(`libtorch-gan:${base}:${epoch}`).digest().readUInt32LE(0) & 0x7fffffff;
}

/**
 * Creates the next free run folder `<saveDir>/run-<n>` (n = 1 + the highest existing number),
 * with a non-recursive mkdir so that concurrent runs never share a folder. Returns its path.
 */
export function createRunDir(saveDir: string): string {
  fs.mkdirSync(saveDir, { recursive: true });
  let n = 1;
  for (const name of fs.readdirSync(saveDir)) {
    const m = /^run-(\d+)$/.exec(name);
    if (m) n = Math.max(n, Number(m[1]) + 1);
  }
  for (;; n++) {
    const dir = path.join(saveDir, `run-${n}`);
    try {
      fs.mkdirSync(dir);
      return dir;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}

function isResolved(c: RunConfig | ResolvedConfig): c is ResolvedConfig {
  return typeof (c as ResolvedConfig).preset === 'object' && (c as ResolvedConfig).preset !== null;
}

function makeOptimizer(spec: OptimizerSpec, params: Tensor[]): Optimizer {
  if (spec.type === 'adam') {
    // fused: one native pass per parameter (2.5-4x faster Adam here), equal to PyTorch's update up to rounding.
    return new Adam(params, { lr: spec.lr, betas: spec.betas, eps: spec.eps, weightDecay: spec.weightDecay, amsgrad: spec.amsgrad, fused: true });
  }
  return new SGD(params, { lr: spec.lr, momentum: spec.momentum, dampening: spec.dampening, weightDecay: spec.weightDecay, nesterov: spec.nesterov });
}

/** Mean of each of the 4 columns of per-step records [dLoss, gLoss, dReal, dFake]. */
function stepMeans(per: Float32Array): StepResult {
  const sums = [0, 0, 0, 0];
  for (let i = 0; i < per.length; i++) sums[i % 4] += per[i];
  const n = Math.max(1, per.length / 4);
  return { dLoss: sums[0] / n, gLoss: sums[1] / n, dReal: sums[2] / n, dFake: sums[3] / n };
}

function concat(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isAbortError(e: unknown): boolean {
  return e instanceof Error && e.name === 'AbortError';
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The config of a resumed run: the stored one, with the run options the caller gives (epochs,
 * device, threads, verbose, saveEvery, sampleEvery, data) applied. Keys that define the model or
 * the training (preset, batchSize, lr, betas, zDim, seed) must equal the stored ones.
 */
export function resumeConfig(stored: ResolvedConfig, given: RunConfig | ResolvedConfig, env: { cudaAvailable: boolean }, resumeDir: string): ResolvedConfig {
  const issues: ConfigIssue[] = [];
  const conflict = (key: string, was: unknown, now: unknown) =>
    issues.push({
      path: [key],
      message: `config.${key}: the run in ${resumeDir} was trained with ${JSON.stringify(was)}, got ${JSON.stringify(now)}; a resumed run keeps its ${key} (leave it out)`,
    });
  if (isResolved(given)) {
    if (given.preset.name !== stored.preset.name) conflict('preset', stored.preset.name, given.preset.name);
    const { epochs: _a, ...g } = given.preset;
    const { epochs: _b, ...s } = stored.preset;
    if (!issues.length && !same(g, s)) {
      issues.push({ path: ['preset'], message: `config.preset: differs from the preset the run in ${resumeDir} was trained with (only epochs may change when resuming)` });
    }
    if (issues.length) throw new ConfigError(issues);
    return { ...stored, preset: { ...stored.preset, epochs: given.preset.epochs }, device: given.device, saveEvery: given.saveEvery, sampleEvery: given.sampleEvery, verbose: given.verbose, threads: given.threads, resume: resumeDir };
  }
  const c = parseConfig(given);
  const p = stored.preset;
  if (c.preset !== undefined && c.preset !== p.name) conflict('preset', p.name, c.preset);
  if (c.batchSize !== undefined && c.batchSize !== p.batchSize) conflict('batchSize', p.batchSize, c.batchSize);
  if (c.lr !== undefined && c.lr !== p.optimizer.lr) conflict('lr', p.optimizer.lr, c.lr);
  if (c.betas !== undefined && !(p.optimizer.type === 'adam' && same(c.betas, p.optimizer.betas))) {
    conflict('betas', p.optimizer.type === 'adam' ? p.optimizer.betas : null, c.betas);
  }
  if (c.zDim !== undefined && c.zDim !== p.zDim) conflict('zDim', p.zDim, c.zDim);
  if (c.seed !== undefined && c.seed !== stored.seed) conflict('seed', stored.seed ?? null, c.seed);
  // device, data etc. are validated by resolving them against the stored preset
  let resolved: ResolvedConfig | undefined;
  try {
    resolved = resolveConfig({ ...c, preset: p.name, resume: undefined, betas: undefined, lr: undefined, zDim: undefined, batchSize: undefined }, env);
  } catch (e) {
    if (e instanceof ConfigError) issues.push(...e.issues);
    else throw e;
  }
  if (issues.length || !resolved) throw new ConfigError(issues);
  return {
    ...stored,
    preset: { ...p, epochs: c.epochs ?? p.epochs },
    device: resolved.device,
    saveEvery: c.saveEvery ?? stored.saveEvery,
    sampleEvery: c.sampleEvery ?? stored.sampleEvery,
    verbose: c.verbose ?? stored.verbose,
    threads: c.threads ?? stored.threads,
    data: c.data ? resolved.data : stored.data,
    resume: resumeDir,
  };
}

export class Trainer extends EventEmitter<TrainerEvents> {
  private flushDenormalBefore = false;
  /** The effective config (after init()). */
  config!: ResolvedConfig;
  runDir!: string;
  generator!: Module;
  discriminator!: Module;
  optimizerG!: Optimizer;
  optimizerD!: Optimizer;
  gan!: GanStep;
  /** The training images, uint8 [N, 784], on the device. */
  data!: Tensor;
  /** Noise of the sample grids, [64, zDim], on the device. */
  fixedNoise!: Tensor;
  /** Epochs completed. */
  epoch = 0;
  /** Optimizer steps taken over the whole run. */
  globalStep = 0;
  /** Base of the per-epoch shuffle seeds. */
  shuffleSeed = 0;
  /** The dataset the images came from. */
  dataset!: ImageDataset;
  /** The run's config.json contents. */
  runInfo!: RunInfo;
  /** The checkpoint this trainer resumed from (trainer.json contents), if any. */
  resumedFrom: TrainerState | null = null;

  private readonly given: RunConfig | ResolvedConfig;
  private readonly opts: TrainerOptions;
  private writer: SummaryWriter | null = null;
  private losses: LossPoint[] = [];
  private lastCheckpointStep = -1;
  private lastPlotStep = -1;
  private initialized = false;
  /** Resuming inside an epoch: its steps done before the stop and their losses (from losses.csv). */
  private resumeWithin: { epoch: number; steps: number; perStep: Float32Array | null } | null = null;

  constructor(config: RunConfig | ResolvedConfig, opts: TrainerOptions = {}) {
    super();
    this.given = config;
    this.opts = opts;
    if (opts.limit !== undefined && (!Number.isSafeInteger(opts.limit) || opts.limit < 1)) {
      throw new RangeError(`limit: expected an integer >= 1, got ${opts.limit}`);
    }
  }

  /** new Trainer(config, opts) followed by init(). */
  static async create(config: RunConfig | ResolvedConfig, opts: TrainerOptions = {}): Promise<Trainer> {
    const t = new Trainer(config, opts);
    await t.init();
    return t;
  }

  get device(): 'cpu' | 'cuda' {
    return this.config.device;
  }
  get preset(): Preset {
    return this.config.preset;
  }
  /** Steps per epoch (the last batch may be smaller). */
  get stepsPerEpoch(): number {
    return Math.ceil(this.data.shape[0] / this.preset.batchSize);
  }

  /**
   * Resolves the config (for a resume: the run's stored config with the given run options), loads
   * and uploads the data, builds the models, optimizers and GanStep, restores the checkpoint when
   * resuming, and creates (or reopens) the run folder.
   */
  async init(): Promise<this> {
    if (this.initialized) return this;
    const cudaAvailable = torch.cuda.isAvailable();
    const resumeDir = this.given.resume;
    let stored: RunInfo | null = null;
    if (resumeDir) {
      stored = readRunInfo(resumeDir);
      this.resumedFrom = readTrainerState(resumeDir);
      this.config = resumeConfig(stored.config, this.given, { cudaAvailable }, resumeDir);
    } else {
      this.config = isResolved(this.given) ? this.given : resolveConfig(this.given, { cudaAvailable });
    }
    const cfg = this.config;
    if (cfg.threads !== undefined) torch.setNumThreads(cfg.threads);
    // Underflowing values make CPU float math several-fold slower (seed000: 5 -> 13 ms/step); runs
    // flush denormals to zero unless the config says otherwise (kept as stored when resuming).
    this.flushDenormalBefore = torch.getFlushDenormal();
    torch.setFlushDenormal(cfg.flushDenormal ?? true);

    // data, uploaded once
    const ds =
      this.opts.dataset ??
      (await (cfg.data.dataset === 'fashion-mnist' ? FashionMNIST : MNIST)({
        train: true,
        root: cfg.data.root,
        download: cfg.data.download,
        onProgress: (p) => this.emit('download', p),
      }));
    if (ds.height * ds.width !== IMAGE_FEATURES) {
      throw new Error(`the presets train on ${IMAGE_SIDE}x${IMAGE_SIDE} images; the dataset has ${ds.height}x${ds.width}`);
    }
    this.dataset = ds;
    const limit = this.opts.limit ?? (this.opts.dataset ? undefined : (stored?.limit ?? undefined));
    const n = Math.min(ds.length, limit ?? ds.length);
    if (n < 1) throw new Error('the dataset is empty');
    const images = ds.images.subarray(0, n * IMAGE_FEATURES);
    this.data = torch.tensor(images, [n, IMAGE_FEATURES], { dtype: 'uint8', device: cfg.device });

    // models, optimizers, fused step, fixed noise: in this order after seeding
    const preset = cfg.preset;
    if (cfg.seed !== undefined) torch.manualSeed(cfg.seed);
    this.generator = fromSpec(preset.generator, { device: cfg.device });
    this.discriminator = fromSpec(preset.discriminator, { device: cfg.device });
    this.optimizerG = makeOptimizer(preset.optimizer, this.generator.parameters());
    this.optimizerD = makeOptimizer(preset.optimizer, this.discriminator.parameters());
    this.gan = new GanStep(this.generator, this.discriminator, this.optimizerG, this.optimizerD, preset.step, { cudaGraphs: cfg.cudaGraphs ?? true });
    const noise = drawNoise(preset.step.noise, SAMPLE_GRID_SIZE);
    this.fixedNoise = noise.to(cfg.device);
    if (this.fixedNoise !== noise) noise.dispose();

    if (resumeDir && stored && this.resumedFrom) {
      const ckpt = loadCheckpoint(resumeDir, { device: cfg.device });
      restoreCheckpoint(ckpt, { generator: this.generator, discriminator: this.discriminator, optimizerG: this.optimizerG, optimizerD: this.optimizerD, device: cfg.device });
      if (ckpt.fixedNoise) {
        this.fixedNoise.dispose();
        this.fixedNoise = ckpt.fixedNoise.to(cfg.device);
        if (this.fixedNoise !== ckpt.fixedNoise) ckpt.fixedNoise.dispose();
      }
      // the module weights were copied in place; the optimizer may hold on to its state tensors
      for (const t of [...Object.values(ckpt.generator), ...Object.values(ckpt.discriminator), ckpt.rng.cpu]) t.dispose();
      ckpt.rng.cuda?.dispose();
      this.epoch = ckpt.state.epoch;
      this.globalStep = ckpt.state.globalStep;
      this.shuffleSeed = ckpt.state.shuffleSeed;
      this.lastCheckpointStep = this.globalStep;
      this.runDir = resumeDir;
      // config.json describes the run as it now continues (epochs, device, ... may have changed)
      this.runInfo = {
        ...stored,
        device: cfg.device,
        limit: limit ?? null,
        dataset: { name: ds.name, images: n, source: ds.source },
        config: cfg,
        resumes: [
          ...(stored.resumes ?? []),
          { time: new Date().toISOString(), fromEpoch: this.epoch, packageVersion: this.runtime().packageVersion, runConfig: isResolved(this.given) ? null : this.given },
        ],
      };
      this.losses = this.readLosses(this.globalStep);
      const within = ckpt.state.interrupted;
      if (within && within.epoch === this.epoch + 1 && within.steps > 0) {
        const perStep = this.readEpochSteps(within.epoch, this.globalStep - within.steps, within.steps);
        if (!perStep) this.emit('warning', new Error(`losses.csv lacks steps of the interrupted epoch ${within.epoch}: its means will cover the resumed steps only`));
        this.resumeWithin = { epoch: within.epoch, steps: within.steps, perStep };
      }
    } else {
      this.shuffleSeed = cfg.seed ?? randomSeed();
      this.runDir = createRunDir(cfg.saveDir);
      const rt = this.runtime();
      this.runInfo = {
        format: RUN_FORMAT,
        run: path.basename(this.runDir),
        startTime: new Date().toISOString(),
        packageVersion: rt.packageVersion,
        libtorchVersion: rt.libtorchVersion,
        device: cfg.device,
        seed: cfg.seed ?? null,
        shuffleSeed: this.shuffleSeed,
        limit: limit ?? null,
        dataset: { name: ds.name, images: n, source: ds.source },
        config: cfg,
        runConfig: isResolved(this.given) ? null : this.given,
        resumes: [],
      };
      this.writeLossesHeader();
    }
    writeFileAtomic(path.join(this.runDir, 'config.json'), `${JSON.stringify(this.runInfo, null, 2)}\n`);

    this.writer = new SummaryWriter(this.runDir);
    const realPath = path.join(this.runDir, 'real.png');
    if (!fs.existsSync(realPath)) {
      const k = Math.min(SAMPLE_GRID_SIZE, n);
      const real = { data: ds.images.subarray(0, k * IMAGE_FEATURES), shape: [k, IMAGE_SIDE, IMAGE_SIDE] };
      saveImageGrid(realPath, real, { nrow: 8 });
      this.writer.addImageGrid('real', real, 0, { nrow: 8 });
    }
    this.initialized = true;
    return this;
  }

  private runtime(): { packageVersion: string; libtorchVersion: string } {
    try {
      const i = runtimeInfo();
      return { packageVersion: i.packageVersion, libtorchVersion: i.libtorch.version };
    } catch {
      return { packageVersion: 'unknown', libtorchVersion: 'unknown' };
    }
  }

  private checkReady(): void {
    if (!this.initialized) throw new Error('Trainer: call await trainer.init() (or use Trainer.create) first');
    if (this.gan.busy) throw new Error('Trainer: an epoch is running on this trainer');
  }

  // ---------------------------------------------------------------------------------------------
  // Single steps (the seeds' imperative loop)

  /** A batch as the models take it: float32 in the preset's range, on the device (uint8 pixels are normalized). */
  private prepare(batch: Tensor): Tensor {
    return torch.scope(() => {
      let x = batch.device.startsWith(this.device) ? batch : batch.to(this.device);
      if (x.dtype === 'uint8') {
        x = x.to('float32').div(255);
        if (this.preset.normalize === '[-1,1]') x = x.sub(0.5).div(0.5);
      }
      return x.ndim === 2 ? x : x.reshape([x.shape[0], IMAGE_FEATURES]);
    });
  }

  /** One D update on a real batch (uint8 pixels or float images in the preset's range). */
  trainDiscriminator(batch: Tensor): Pick<StepResult, 'dLoss' | 'dReal' | 'dFake'> {
    this.checkReady();
    const x = this.prepare(batch);
    try {
      return this.gan.trainDiscriminator(x);
    } finally {
      if (x !== batch) x.dispose();
    }
  }

  /** One G update on `n` fresh noise vectors (default: the batch size). */
  trainGenerator(n: number = this.preset.batchSize): Pick<StepResult, 'gLoss' | 'dFake'> {
    this.checkReady();
    return this.gan.trainGenerator(n);
  }

  /** One D update then one G update, as in the preset's step. */
  step(batch: Tensor): StepResult {
    this.checkReady();
    const x = this.prepare(batch);
    try {
      return this.gan.step(x);
    } finally {
      if (x !== batch) x.dispose();
    }
  }

  /** `n` images from G (eval mode, no autograd). Never advances the global generator. */
  sample(n: number, opts: { seed?: number } = {}): Samples {
    this.checkReady();
    const seed = opts.seed ?? randomSeed();
    const z = drawNoise(this.preset.step.noise, n, { seed });
    try {
      return { images: this.generateImages(z), shape: [n, IMAGE_SIDE, IMAGE_SIDE], range: this.preset.normalize, seed };
    } finally {
      z.dispose();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The epoch loop

  /**
   * Trains from the epoch after the last completed one up to `config.preset.epochs`. When `signal`
   * aborts, training stops at the next step boundary, a checkpoint is written, and the result has
   * `aborted: true`.
   */
  async train(opts: { signal?: AbortSignal } = {}): Promise<TrainResult> {
    this.checkReady();
    const { signal } = opts;
    const cfg = this.config;
    const preset = cfg.preset;
    const epochs = preset.epochs;
    const firstEpoch = this.epoch + 1;
    const files: TrainResult['files'] = { config: path.join(this.runDir, 'config.json'), tensorboard: this.writer?.filePath };
    let steps = 0;
    let images = 0;
    let seconds = 0;
    let last: EpochResult | undefined;
    let interrupted: TrainResult['interrupted'] = null;
    let aborted = false;

    // A listener that throws inside a progress report (called from the native side) stops the
    // epoch through this controller; the error is then thrown from train().
    const internal = new AbortController();
    let listenerError: unknown;
    const stop = signal ? AbortSignal.any([signal, internal.signal]) : internal.signal;

    for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
      // A resumed interrupted epoch continues at its next batch.
      const within = this.resumeWithin?.epoch === epoch ? this.resumeWithin : null;
      this.resumeWithin = null;
      const startStep = within?.steps ?? 0;
      const stepsBefore = this.globalStep - startStep; // global step before the epoch's first step
      const t0 = performance.now();
      let r: EpochResult;
      try {
        if (stop.aborted) throw Object.assign(new Error('aborted'), { name: 'AbortError', completedSteps: 0 });
        r = await this.gan.trainEpoch(this.data, {
          batchSize: preset.batchSize,
          shuffle: true,
          seed: shuffleSeedFor(this.shuffleSeed, epoch),
          normalize: preset.normalize,
          progressEvery: this.progressEvery(),
          recordSteps: true,
          startStep,
          signal: stop,
          onProgress: (p) => {
            try {
              this.onProgress(epoch, p, stepsBefore, t0);
            } catch (e) {
              listenerError ??= e;
              internal.abort();
            }
          },
        });
      } catch (e) {
        if (listenerError !== undefined) throw listenerError;
        if (!isAbortError(e)) throw e;
        // Stopped at a step boundary: keep the steps done (losses.csv, then the checkpoint) to resume from.
        const { completedSteps = 0, perStep } = e as EpochAbortError;
        if (perStep) this.recordSteps(epoch, stepsBefore + startStep, perStep);
        const done = startStep + completedSteps;
        this.globalStep = stepsBefore + done;
        interrupted = done > 0 ? { epoch, steps: done } : null;
        aborted = true;
        break;
      }
      if (listenerError !== undefined) throw listenerError;
      this.recordSteps(epoch, stepsBefore + startStep, r.perStep!);
      steps += r.steps;
      images += r.images;
      seconds += r.seconds;
      // The epoch's means over all its steps, those before a resume included (computed here in both
      // cases, so that a resumed epoch reports exactly what the uninterrupted one does).
      const all = within?.perStep ? concat(within.perStep, r.perStep!) : within ? null : r.perStep!;
      r = {
        ...r,
        ...(all ? stepMeans(all) : {}),
        steps: startStep + r.steps,
        images: Math.min(this.data.shape[0], startStep * preset.batchSize) + r.images,
      };
      this.epoch = epoch;
      this.globalStep = stepsBefore + r.steps;
      last = r;
      this.recordEpoch(epoch, r);

      const isLast = epoch === epochs;
      const epochFiles: EpochFiles = {};
      if (cfg.sampleEvery > 0 && (epoch % cfg.sampleEvery === 0 || isLast)) {
        epochFiles.samples = this.writeSampleGrid(epoch);
        files.samples = path.dirname(epochFiles.samples);
      }
      if ((cfg.saveEvery > 0 && epoch % cfg.saveEvery === 0) || isLast) {
        epochFiles.checkpoint = this.checkpoint(null);
        epochFiles.lossPlot = await this.lossPlot();
      }
      this.writer?.flush();
      this.emit('epoch', {
        epoch,
        epochs,
        steps: r.steps,
        images: r.images,
        seconds: r.seconds,
        imagesPerSec: r.imagesPerSec,
        dLoss: r.dLoss,
        gLoss: r.gLoss,
        dReal: r.dReal,
        dFake: r.dFake,
        globalStep: this.globalStep,
        samplePath: epochFiles.samples,
        files: epochFiles,
      });
    }

    // the end (or the stop): a checkpoint if anything changed since the last one, plot, report
    if (this.globalStep !== this.lastCheckpointStep || interrupted) files.checkpoint = this.checkpoint(interrupted);
    else if (fs.existsSync(path.join(this.runDir, CHECKPOINT_FILES.trainer))) files.checkpoint = path.join(this.runDir, CHECKPOINT_FILES.trainer);
    files.lossPlot = await this.lossPlot();
    try {
      files.report = writeReport(this.runDir).path;
    } catch (e) {
      this.emit('warning', new Error(`could not write report.html: ${(e as Error).message}`));
    }
    this.writer?.flush();
    return {
      runDir: this.runDir,
      aborted,
      firstEpoch,
      epoch: this.epoch,
      epochs,
      steps,
      images,
      seconds,
      imagesPerSec: seconds > 0 ? images / seconds : 0,
      globalStep: this.globalStep,
      finalDLoss: last?.dLoss,
      finalGLoss: last?.gLoss,
      interrupted,
      files,
    };
  }

  /**
   * Writes a checkpoint of the current state into the run folder now. `interrupted` marks a
   * mid-epoch checkpoint. Returns the path of trainer.json.
   */
  checkpoint(interrupted: { epoch: number; steps: number } | null = null): string {
    this.checkReady();
    const { path: file } = saveCheckpoint(this.runDir, {
      generator: this.generator,
      discriminator: this.discriminator,
      optimizerG: this.optimizerG,
      optimizerD: this.optimizerD,
      fixedNoise: this.fixedNoise,
      state: {
        epoch: this.epoch,
        globalStep: this.globalStep,
        preset: this.preset.name,
        device: this.device,
        seed: this.config.seed ?? null,
        shuffleSeed: this.shuffleSeed,
        images: this.data.shape[0],
        interrupted,
      },
    });
    this.lastCheckpointStep = this.globalStep;
    this.emit('checkpoint', { runDir: this.runDir, path: file, epoch: this.epoch, globalStep: this.globalStep, interrupted });
    return file;
  }

  /** Frees the data, models and noise and closes the TensorBoard file. The trainer is unusable afterwards. */
  dispose(): void {
    this.writer?.close();
    this.writer = null;
    if (!this.initialized) return;
    this.initialized = false;
    torch.setFlushDenormal(this.flushDenormalBefore); // the mode is process-wide: give it back
    this.data.dispose();
    this.fixedNoise.dispose();
    this.generator.dispose();
    this.discriminator.dispose();
  }

  /** Closes the TensorBoard event file (pending events are written). */
  close(): void {
    this.writer?.close();
    this.writer = null;
  }

  // ---------------------------------------------------------------------------------------------

  private progressEvery(): number {
    if (this.opts.progressEvery !== undefined) return Math.max(1, Math.floor(this.opts.progressEvery));
    return Math.max(1, Math.min(50, Math.round(this.stepsPerEpoch / 200)));
  }

  private onProgress(epoch: number, p: EpochProgress, stepsBefore: number, t0: number): void {
    const globalStep = stepsBefore + p.step;
    const elapsed = (performance.now() - t0) / 1000;
    const done = Math.min(p.step * this.preset.batchSize, this.data.shape[0]);
    const imagesPerSec = elapsed > 0 ? done / elapsed : 0;
    const w = this.writer;
    if (w) {
      w.addScalar('loss/d', p.dLoss, globalStep);
      w.addScalar('loss/g', p.gLoss, globalStep);
      w.addScalar('D(x)', p.dReal, globalStep);
      w.addScalar('D(G(z))', p.dFake, globalStep);
      w.addScalar('images_per_sec', imagesPerSec, globalStep);
    }
    this.emit('step', {
      epoch,
      epochs: this.preset.epochs,
      step: p.step,
      stepsPerEpoch: p.totalSteps,
      globalStep,
      dLoss: p.dLoss,
      gLoss: p.gLoss,
      dReal: p.dReal,
      dFake: p.dFake,
      imagesPerSec,
    });
  }

  private recordEpoch(epoch: number, r: EpochResult): void {
    const w = this.writer;
    if (w) {
      w.addScalar('epoch/loss_d', r.dLoss, epoch);
      w.addScalar('epoch/loss_g', r.gLoss, epoch);
      w.addScalar('epoch/D(x)', r.dReal, epoch);
      w.addScalar('epoch/D(G(z))', r.dFake, epoch);
      w.addScalar('epoch/images_per_sec', r.imagesPerSec, epoch);
      w.addScalar('epoch/seconds', r.seconds, epoch);
    }
  }

  /** Appends per-step losses ([dLoss, gLoss, dReal, dFake] each) after global step `stepsBefore` to losses.csv and the history. */
  private recordSteps(epoch: number, stepsBefore: number, per: Float32Array): void {
    if (per.length === 0) return;
    let csv = '';
    for (let i = 0; i * 4 < per.length; i++) {
      const step = stepsBefore + i + 1;
      const [d, g, dr, df] = [per[i * 4], per[i * 4 + 1], per[i * 4 + 2], per[i * 4 + 3]];
      this.losses.push({ step, epoch, dLoss: d, gLoss: g });
      csv += `${step},${epoch},${d},${g},${dr},${df}\n`;
    }
    fs.appendFileSync(path.join(this.runDir, 'losses.csv'), csv);
  }

  private writeLossesHeader(): void {
    writeFileAtomic(path.join(this.runDir, 'losses.csv'), `${LOSSES_HEADER}\n`);
  }

  /** losses.csv up to the checkpoint (later lines came from steps after it and are dropped). */
  private readLosses(globalStep: number): LossPoint[] {
    const file = path.join(this.runDir, 'losses.csv');
    let text = '';
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      // no history: the plot starts at the resumed epoch
    }
    const lines = text.split('\n');
    const kept = [LOSSES_HEADER];
    const points: LossPoint[] = [];
    for (const line of lines.slice(1)) {
      const [s, e, d, g] = line.split(',');
      if (!line || Number(s) > globalStep) continue;
      kept.push(line);
      points.push({ step: Number(s), epoch: Number(e), dLoss: Number(d), gLoss: Number(g) });
    }
    writeFileAtomic(file, `${kept.join('\n')}\n`);
    return points;
  }

  /** The per-step records of `epoch`'s steps first+1 .. first+count from losses.csv, or null when any is missing. */
  private readEpochSteps(epoch: number, first: number, count: number): Float32Array | null {
    let text = '';
    try {
      text = fs.readFileSync(path.join(this.runDir, 'losses.csv'), 'utf8');
    } catch {
      return null;
    }
    const out = new Float32Array(count * 4);
    let found = 0;
    for (const line of text.split('\n').slice(1)) {
      const [s, e, ...v] = line.split(',').map(Number);
      const i = s - first - 1;
      if (e !== epoch || i < 0 || i >= count || v.length !== 4) continue;
      out.set(v, i * 4);
      found++;
    }
    return found === count ? out : null;
  }

  /** Sample images through the fused step's training thread (keeps all parallel work on one thread). */
  private generateImages(z: Tensor): Float32Array {
    return torch.scope(() => this.gan.generate(z).to('cpu').toFloat32Array());
  }

  private writeSampleGrid(epoch: number): string {
    const images = this.generateImages(this.fixedNoise);
    const batch = { data: images, shape: [SAMPLE_GRID_SIZE, IMAGE_SIDE, IMAGE_SIDE] };
    const file = path.join(this.runDir, 'samples', `epoch-${String(epoch).padStart(3, '0')}.png`);
    saveImageGrid(file, batch, { nrow: 8, range: this.preset.normalize });
    this.writer?.addImageGrid('samples', batch, epoch, { nrow: 8, range: this.preset.normalize });
    return file;
  }

  private async lossPlot(): Promise<string | undefined> {
    const png = path.join(this.runDir, 'loss.png');
    if (this.losses.length === 0) return undefined;
    if (this.lastPlotStep === this.globalStep && fs.existsSync(png)) return png;
    try {
      const { pngPath } = await writeLossPlot(this.runDir, this.losses, { title: `GAN losses (${this.preset.name})` });
      this.lastPlotStep = this.globalStep;
      return pngPath;
    } catch (e) {
      this.emit('warning', new Error(`could not render the loss plot: ${(e as Error).message}`));
      return undefined;
    }
  }
}
