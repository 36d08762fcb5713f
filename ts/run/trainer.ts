/**
 * Trainer: a whole training run as the seed scripts do it, plus what you need to watch it and
 * resume it. It loads the data once onto the device, builds G and D from the preset (after
 * torch.manualSeed(seed) when seeded), and trains epoch by epoch with the fused native step
 * (GanStep.trainEpoch), writing into a new run folder `<saveDir>/run-<n>` (its files: run-dir.ts).
 * The Trainer never prints: it emits 'device', 'step', 'epoch', 'checkpoint' and 'warning' events.
 * Device 'auto' on a machine without usable CUDA trains on the CPU and says why ('device' event,
 * `deviceInfo.fallback`, TrainResult.device, report.html).
 *
 * Reproducibility: noise and dropout come from the global generator, each epoch's shuffling from
 * its own seed derived from the run's (`shuffleSeedFor`). A checkpoint stores the generator's
 * state, so a run resumed on the CPU gives exactly the losses and weights of the uninterrupted
 * run, also from a checkpoint written inside an epoch: its steps are in losses.csv, and the
 * resumed run continues that epoch at its next batch, in the same order.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type DownloadProgress } from '../data/download';
import { type ImageDataset } from '../data/mnist';
import { buildGan } from '../gan/build';
import { type EpochResult, type GanStep, type StepResult } from '../gan/gan-step';
import { withModelInput } from '../gan/image-batch';
import { type Preset } from '../gan/presets';
import { writeReport } from '../logging/report';
import { type Module } from '../nn/module';
import { type Optimizer } from '../optim/optimizer';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { CHECKPOINT_FILES, type TrainerState } from '../store/checkpoint';
import { saveTrainingState, type TrainingState } from '../store/training-state';
import { type ResolvedConfig, type RunConfig } from '../config/config';
import { shuffleSeedFor, loggedEpoch } from './epoch';
import { openRun } from './run-start';
import { isResolvedRun, resolveRun, type ResolvedRun } from './resolve';
import { writeRunInfo, type RunInfo } from '../store/run-dir';
import { gridImages, gridInputs, RunLog, SAMPLE_GRID_SIZE } from './run-log';
import { applyRuntime } from './runtime';
import { type Samples, sampleWith } from '../gan/sample';
import { uploadTrainingData } from './training-data';
import { EpochQuality } from '../quality/epoch-quality';
import { DataParallelError, rankSeed, threadsPerRank, withRankRngStates } from './data-parallel';
import { type EpochFiles, type TrainDevice, type TrainerEvents, type TrainerOptions, type TrainerStepEvent, type TrainResult } from './trainer-events';

export { RUN_FORMAT, createRunDir } from '../store/run-dir';
export { SAMPLE_GRID_SIZE } from './run-log';
export { resolveRun, type ResolvedRun } from './resolve';
export { shuffleSeedFor } from './epoch';
export type * from './trainer-events';

export class Trainer extends EventEmitter<TrainerEvents> {
  private flushDenormalBefore = false;
  private quality: EpochQuality | null = null;
  runDir!: string;
  generator!: Module;
  discriminator!: Module;
  optimizerG!: Optimizer;
  optimizerD!: Optimizer;
  gan!: GanStep;
  /** The training images, uint8 [N, C, H, W], on the device. */
  data!: Tensor;
  /** Their labels, int64 [N] on the device (conditional presets), else null. */
  labels: Tensor | null = null;
  /** Noise of the sample grids, [64, ...noise shape] (conditional: 8 per class), on the device. */
  fixedNoise!: Tensor;
  /** The sample grids' labels (conditional: one row of 8 per class), else null. */
  fixedLabels: Tensor | null = null;
  /** Epochs completed. */
  epoch = 0;
  /** Optimizer steps taken over the whole run. */
  globalStep = 0;
  /** Base of the per-epoch shuffle seeds. */
  shuffleSeed = 0;
  /** The run's config.json contents. */
  runInfo!: RunInfo;
  /** Where the run trains, and why on the CPU when device 'auto' fell back to it (after init()). */
  deviceInfo!: TrainDevice;

  private resolvedRun: ResolvedRun | null = null;
  /** What the deprecated `new Trainer(config)` was given, resolved by init(). */
  private pending: RunConfig | ResolvedConfig | null = null;
  private readonly opts: TrainerOptions;
  private log: RunLog | null = null;
  private lastCheckpointStep = -1;
  private initialized = false;
  /** Resuming inside an epoch: its steps done before the stop and their losses (from losses.csv). */
  private resumeWithin: { epoch: number; steps: number; perStep: Float32Array | null } | null = null;

  /**
   * A trainer for a resolved run (resolveRun: its config, images and the run it resumes); init() builds it.
   * Of `opts`, the processGroup (also given to resolveRun) and progressEvery are used.
   *
   * Deprecated: `new Trainer(config, opts)` with a RunConfig or ResolvedConfig still works: init()
   * resolves it first (emitting 'download' and 'warning' as it reads the data). Use Trainer.create.
   */
  constructor(run: ResolvedRun | RunConfig | ResolvedConfig, opts: TrainerOptions = {}) {
    super();
    this.opts = opts;
    if (isResolvedRun(run)) this.resolvedRun = run;
    else this.pending = run;
  }

  private get run(): ResolvedRun {
    if (this.resolvedRun) return this.resolvedRun;
    throw new Error('Trainer: this trainer was made from a config, which init() resolves: await trainer.init() first (Trainer.create does both)');
  }
  /** The config the run trains with (resolve.ts: the preset adapted to the data, the device resolved). */
  get config(): ResolvedConfig {
    return this.run.config;
  }
  /** The dataset the images came from. */
  get dataset(): ImageDataset {
    return this.run.dataset;
  }
  /** The checkpoint this trainer resumed from (trainer.json contents), if any. */
  get resumedFrom(): TrainerState | null {
    return this.run.resumed?.state ?? null;
  }

  /**
   * The public entry: resolves `config` (resolveRun: for a resume, the run's stored config with the
   * options given now; the images read and the preset adapted to them), then new Trainer(...).init().
   */
  static async create(config: RunConfig | ResolvedConfig, opts: TrainerOptions = {}): Promise<Trainer> {
    const t = new Trainer(await resolveRun(config, opts), opts);
    await t.init();
    return t;
  }

  /** This process's rank and the ranks of the run (0 and 1 unless data-parallel). */
  get rank(): number {
    return this.opts.processGroup?.rank ?? 0;
  }
  get worldSize(): number {
    return this.opts.processGroup?.worldSize ?? 1;
  }
  /** Whether this process writes the run folder (rank 0). */
  private get writer(): boolean {
    return this.rank === 0;
  }

  get device(): 'cpu' | 'cuda' {
    return this.config.device;
  }
  get preset(): Preset {
    return this.config.preset;
  }
  /** Steps per epoch (the last batch may be smaller); data-parallel, of each rank's shard. */
  get stepsPerEpoch(): number {
    return Math.ceil(Math.ceil(this.data.shape[0] / this.worldSize) / this.preset.batchSize);
  }

  /**
   * Uploads the images, builds the models, optimizers and GanStep, restores the checkpoint when
   * resuming, and creates (or reopens) the run folder.
   */
  async init(): Promise<this> {
    if (this.initialized) return this;
    if (this.pending) {
      const o = this.opts; // the deprecated new Trainer(config): its events, unless options take them
      const onDownload = o.onDownload ?? ((p: DownloadProgress) => this.emit('download', p));
      const onWarning = o.onWarning ?? ((e: Error) => this.emit('warning', e));
      [this.resolvedRun, this.pending] = [await resolveRun(this.pending, { ...o, onDownload, onWarning }), null];
    }
    const cfg = this.config;
    const pg = this.opts.processGroup;
    const warn = (e: Error) => this.emit('warning', e);
    this.flushDenormalBefore = applyRuntime(cfg, warn, pg && (await threadsPerRank(pg)));
    ({ images: this.data, labels: this.labels } = uploadTrainingData(this.dataset, cfg, this.run.limit));

    // models, optimizers, fused step, fixed noise: in this order after seeding
    if (cfg.seed !== undefined) torch.manualSeed(cfg.seed);
    Object.assign(this, buildGan(cfg.preset, { device: cfg.device, cudaGraphs: cfg.cudaGraphs ?? true, precision: cfg.precision ?? 'fp32', processGroup: pg })); // generator, ..., gan
    ({ noise: this.fixedNoise, labels: this.fixedLabels } = gridInputs(cfg.preset, cfg.device));
    // each rank its own noise and dropout stream (rank 0's is a one-process run's); weights come from rank 0
    if (pg && cfg.seed !== undefined) torch.manualSeed(rankSeed(cfg.seed, pg.rank));
    const fallback = this.run.deviceFallback;
    this.deviceInfo = { name: this.data.device, ...(fallback !== undefined ? { fallback } : {}) };
    this.emit('device', { ...this.deviceInfo, cudaGraph: this.gan.cudaGraph });

    // the run folder, new or resumed (the checkpoint loaded into the models); config.json then describes the run as it now continues
    const dataset = { name: this.dataset.name, images: this.data.shape[0], source: this.dataset.source };
    const { generator, discriminator, optimizerG, optimizerD, gan } = this;
    const start = await openRun(this.run, { generator, discriminator, optimizerG, optimizerD, generatorEma: gan.emaGenerator }, { processGroup: pg, dataset });
    if (start.emaUpdates !== undefined) gan.emaUpdates = start.emaUpdates;
    if (start.fixedNoise) {
      this.fixedNoise.dispose();
      this.fixedNoise = start.fixedNoise;
    }
    ({ runDir: this.runDir, epoch: this.epoch, globalStep: this.globalStep, shuffleSeed: this.shuffleSeed, within: this.resumeWithin } = start);
    this.runInfo = start.runInfo!;
    if (this.run.resumed) this.lastCheckpointStep = this.globalStep;
    if (start.within && !start.within.perStep) {
      this.emit('warning', new Error(`losses.csv lacks steps of the interrupted epoch ${start.within.epoch}: its means will cover the resumed steps only`));
    }
    this.initialized = true;
    if (!this.writer) return this;
    writeRunInfo(this.runDir, this.runInfo);

    this.log = new RunLog(this.runDir, { title: `GAN losses (${cfg.preset.name})`, range: cfg.preset.normalize, image: cfg.preset.image, onWarning: warn });
    if (this.resumedFrom) this.log.resumeAt(this.globalStep);
    this.log.realImages(this.dataset.images, Math.min(SAMPLE_GRID_SIZE, this.data.shape[0]));
    this.quality = await EpochQuality.forRun(this.runDir, cfg, this.epoch);
    return this;
  }

  private checkReady(): void {
    if (!this.initialized) throw new Error('Trainer: call await trainer.init() (or use Trainer.create) first');
    if (this.gan.busy) throw new Error('Trainer: an epoch is running on this trainer');
  }

  // ---------------------------------------------------------------------------------------------
  // Single steps (the seeds' imperative loop)

  /** One D update on a real batch (uint8 pixels or float images in the preset's range; labels: a conditional preset's). */
  trainDiscriminator(batch: Tensor, labels?: Tensor): Pick<StepResult, 'dLoss' | 'dReal' | 'dFake'> {
    this.checkReady();
    return withModelInput(batch, this.preset, this.device, (x) => this.gan.trainDiscriminator(x, { labels }));
  }

  /** One G update on `n` fresh noise vectors (default: the batch size). */
  trainGenerator(n: number = this.preset.batchSize): Pick<StepResult, 'gLoss' | 'dFake'> {
    this.checkReady();
    return this.gan.trainGenerator(n);
  }

  /** One D update then one G update, as in the preset's step. */
  step(batch: Tensor, labels?: Tensor): StepResult {
    this.checkReady();
    return withModelInput(batch, this.preset, this.device, (x) => this.gan.step(x, { labels }));
  }

  /**
   * `n` images from G (eval mode, no autograd). A conditional preset draws `labels` (one class for
   * all, or one per image; default: uniform). Never advances the global generator.
   */
  sample(n: number, opts: { seed?: number; labels?: number | readonly number[] } = {}): Samples {
    this.checkReady();
    return sampleWith(this.gan, this.preset, n, opts);
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
    const epochs = this.preset.epochs;
    const firstEpoch = this.epoch + 1;
    const files: TrainResult['files'] = { config: path.join(this.runDir, 'config.json'), tensorboard: this.log?.tensorboardFile };
    const totals = { steps: 0, images: 0, seconds: 0 };
    let last: EpochResult | undefined;
    let interrupted: TrainResult['interrupted'] = null;
    let aborted = false;
    for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
      const outcome = await this.trainNextEpoch(epoch, opts.signal, totals);
      if ('stopped' in outcome) {
        interrupted = outcome.stopped;
        aborted = true;
        break;
      }
      last = outcome.done;
      const epochFiles = await this.endEpoch(epoch, last);
      if (epochFiles.samples) files.samples = path.dirname(epochFiles.samples);
    }
    // the end (or the stop): a checkpoint if anything changed since the last one, plot, report
    if (this.globalStep !== this.lastCheckpointStep || interrupted) files.checkpoint = await this.checkpointAll(interrupted);
    else if (fs.existsSync(path.join(this.runDir, CHECKPOINT_FILES.trainer))) files.checkpoint = path.join(this.runDir, CHECKPOINT_FILES.trainer);
    files.lossPlot = await this.log?.lossPlot(this.globalStep);
    try {
      if (this.writer) files.report = writeReport(this.runDir, { device: { ...this.deviceInfo, cudaGraph: this.gan.cudaGraph } }).path;
    } catch (e) {
      this.emit('warning', new Error(`could not write report.html: ${(e as Error).message}`));
    }
    this.log?.flush();
    return {
      runDir: this.runDir,
      aborted,
      firstEpoch,
      epoch: this.epoch,
      epochs,
      ...totals,
      imagesPerSec: totals.seconds > 0 ? totals.images / totals.seconds : 0,
      globalStep: this.globalStep,
      finalDLoss: last?.dLoss,
      finalGLoss: last?.gLoss,
      interrupted,
      quality: this.quality?.history.at(-1),
      device: this.deviceInfo,
      cudaGraph: this.gan.cudaGraph,
      files,
    };
  }

  /** One epoch (epoch.ts), continuing an interrupted one after a resume; keeps the step counts. */
  private async trainNextEpoch(epoch: number, signal: AbortSignal | undefined, totals: { steps: number; images: number; seconds: number }) {
    const within = this.resumeWithin?.epoch === epoch ? this.resumeWithin : null;
    this.resumeWithin = null;
    const { gan, data, labels, preset, worldSize: ranks, log, globalStep } = this;
    const seed = shuffleSeedFor(this.shuffleSeed, epoch);
    const onStep = (e: TrainerStepEvent) => this.emit('step', e);
    const r = await loggedEpoch({
      gan,
      data,
      labels,
      preset,
      ranks,
      log,
      epoch,
      globalStep,
      seed,
      progressEvery: this.opts.progressEvery,
      within,
      signal,
      onStep,
    });
    this.globalStep = r.globalStep;
    if ('stopped' in r) return r;
    for (const k of ['steps', 'images', 'seconds'] as const) totals[k] += r.ran[k];
    this.epoch = epoch;
    return r;
  }

  /** An epoch's scalars, sample grid, periodic checkpoint and loss plot, then the 'epoch' event. */
  private async endEpoch(epoch: number, r: EpochResult): Promise<EpochFiles> {
    const cfg = this.config;
    const isLast = epoch === this.preset.epochs;
    this.log?.epoch(epoch, r);
    const files: EpochFiles = {};
    if (this.log && cfg.sampleEvery > 0 && (epoch % cfg.sampleEvery === 0 || isLast)) {
      files.samples = this.log.samples(epoch, gridImages(this.gan, this.fixedNoise, this.fixedLabels));
    }
    const quality = await this.quality?.after(epoch, isLast, this.gan, this.preset, (e) => this.emit('warning', e));
    if (quality) files.metrics = this.log!.quality(epoch, quality);
    if ((cfg.saveEvery > 0 && epoch % cfg.saveEvery === 0) || isLast) {
      files.checkpoint = await this.checkpointAll(null);
      files.lossPlot = await this.log?.lossPlot(this.globalStep);
    }
    this.log?.flush();
    const { perStep: _perStep, cudaGraph: _graph, ...epochResult } = r;
    this.emit('epoch', { ...epochResult, epoch, epochs: this.preset.epochs, globalStep: this.globalStep, samplePath: files.samples, quality, files });
    return files;
  }

  /**
   * Writes a checkpoint of the current state into the run folder now. `interrupted` marks a
   * mid-epoch checkpoint. Returns the path of trainer.json.
   */
  checkpoint(interrupted: { epoch: number; steps: number } | null = null): string {
    this.checkReady();
    if (this.opts.processGroup) throw new DataParallelError('Trainer.checkpoint: a data-parallel run checkpoints inside train(), where every rank takes part');
    return this.checkpointed(saveTrainingState(this.trainingState(), interrupted), interrupted);
  }

  /** A checkpoint with every rank's RNG state (a collective in a data-parallel run; rank 0 writes it). */
  private async checkpointAll(interrupted: { epoch: number; steps: number } | null): Promise<string | undefined> {
    const pg = this.opts.processGroup;
    if (!pg) return this.checkpoint(interrupted);
    const file = await withRankRngStates(pg, (rng) => (this.writer ? saveTrainingState(this.trainingState(), interrupted, rng) : undefined));
    return this.checkpointed(file, interrupted);
  }

  /** What the store writes of this run: the models, optimizers, counters, seeds and fixed noise. */
  private trainingState(): TrainingState {
    const { runDir, generator, discriminator, optimizerG, optimizerD, fixedNoise, epoch, globalStep, shuffleSeed, worldSize, gan } = this;
    const models = { generator, discriminator, optimizerG, optimizerD, generatorEma: gan.emaGenerator };
    const [{ preset, device, seed }, images, emaUpdates] = [this.config, this.data.shape[0], gan.emaGenerator ? gan.emaUpdates : undefined];
    return { runDir, models, fixedNoise, epoch, globalStep, shuffleSeed, preset: preset.name, device, seed, images, worldSize, emaUpdates };
  }

  private checkpointed<F extends string | undefined>(file: F, interrupted: { epoch: number; steps: number } | null): F {
    this.lastCheckpointStep = this.globalStep;
    if (file) this.emit('checkpoint', { runDir: this.runDir, path: file, epoch: this.epoch, globalStep: this.globalStep, interrupted });
    return file;
  }

  /** Frees the data, models and noise and closes the TensorBoard file. The trainer is unusable afterwards. */
  dispose(): void {
    this.close();
    if (!this.initialized) return;
    this.initialized = false;
    torch.setFlushDenormal(this.flushDenormalBefore); // the mode is process-wide: give it back
    this.data.dispose();
    this.quality?.dispose();
    this.labels?.dispose();
    this.fixedLabels?.dispose();
    this.fixedNoise.dispose();
    this.generator.dispose();
    this.discriminator.dispose();
  }

  /** Closes the TensorBoard event file (pending events are written). */
  close(): void {
    this.log?.close();
  }
}
