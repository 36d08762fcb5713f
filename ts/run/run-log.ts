/**
 * What a training run records as it goes, in its run folder: TensorBoard scalars and images, every
 * step's losses (losses.csv, through run-dir.ts), sample grids and the loss plot. The Trainer hands
 * it plain numbers and images; nothing here touches models.
 */
import { METRICS_FILE, type QualityRow } from '../quality/epoch-quality';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { labelsFor, rowPerClass } from '../gan/condition';
import { type ConvShape } from '../gan/presets/dcgan';
import { noise } from '../gan/noise';
import { type GanStep, type StepResult } from '../gan/gan-step';
import { imagesShape, type Preset } from '../gan/presets';
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { saveImageGrid } from '../logging/grid';
import { writeLossPlot, type LossPoint } from '../logging/plot';
import { SummaryWriter } from '../logging/tensorboard';
import { type PixelRange } from '../util/pixels';
import { appendLosses, truncateLosses } from '../store/run-dir';

/** Images in the fixed-noise sample grids (8 x 8); a conditional run's has one row of GRID_COLUMNS per class. */
export const SAMPLE_GRID_SIZE = 64;
export const GRID_COLUMNS = 8;

/**
 * The fixed inputs of a run's sample grids, on `device` (drawn on the CPU from the global generator,
 * so every device draws the same): 64 noise samples, or for a conditional preset GRID_COLUMNS per
 * class with their labels, one row per class.
 */
export function gridInputs(preset: Preset, device: Device): { noise: Tensor; labels: Tensor | null } {
  const classes = preset.step.conditioning?.classes ?? 0;
  const n = classes ? classes * GRID_COLUMNS : SAMPLE_GRID_SIZE;
  return torch.scope(() => ({
    noise: noise(preset.step.noise, n).to(device),
    labels: classes ? labelsFor(rowPerClass(classes, GRID_COLUMNS), n, classes, 'grid').to(device) : null,
  }));
}

/** G's images of the grid inputs, through the fused step's training thread (keeps all parallel work on one thread). */
export function gridImages(gan: GanStep, noise: Tensor, labels: Tensor | null): Float32Array {
  return torch.scope(() =>
    gan
      .generate(noise, labels ?? undefined)
      .cpu()
      .toFloat32Array(),
  );
}

export class RunLog {
  private writer: SummaryWriter | null;
  private losses: LossPoint[] = [];
  private lastPlotStep = -1;

  constructor(
    readonly runDir: string,
    private readonly opts: { title: string; range: PixelRange; image: ConvShape; onWarning: (e: Error) => void },
  ) {
    this.writer = new SummaryWriter(runDir);
  }

  get tensorboardFile(): string | undefined {
    return this.writer?.filePath;
  }

  /** Resuming: the loss history up to the checkpoint's step (later lines of losses.csv are dropped). */
  resumeAt(globalStep: number): void {
    this.losses = truncateLosses(this.runDir, globalStep);
  }

  /** A progress report inside an epoch. */
  step(globalStep: number, p: StepResult, imagesPerSec: number): void {
    const w = this.writer;
    if (!w) return;
    w.addScalar('loss/d', p.dLoss, globalStep);
    w.addScalar('loss/g', p.gLoss, globalStep);
    w.addScalar('D(x)', p.dReal, globalStep);
    w.addScalar('D(G(z))', p.dFake, globalStep);
    w.addScalar('images_per_sec', imagesPerSec, globalStep);
  }

  /** An epoch's means. */
  epoch(epoch: number, r: StepResult & { imagesPerSec: number; seconds: number }): void {
    const w = this.writer;
    if (!w) return;
    w.addScalar('epoch/loss_d', r.dLoss, epoch);
    w.addScalar('epoch/loss_g', r.gLoss, epoch);
    w.addScalar('epoch/D(x)', r.dReal, epoch);
    w.addScalar('epoch/D(G(z))', r.dFake, epoch);
    w.addScalar('epoch/images_per_sec', r.imagesPerSec, epoch);
    w.addScalar('epoch/seconds', r.seconds, epoch);
  }

  /** An evaluation's figures (config evalEvery) under quality/; returns metrics.csv's path (EpochQuality wrote it). */
  quality(epoch: number, q: QualityRow): string {
    const w = this.writer;
    if (!w) return path.join(this.runDir, METRICS_FILE);
    w.addScalar('quality/fid', q.fid, epoch);
    w.addScalar('quality/inception_score', q.inceptionScore, epoch);
    w.addScalar('quality/coverage', q.coverage, epoch);
    if (q.labelAccuracy !== null) w.addScalar('quality/label_accuracy', q.labelAccuracy, epoch);
    w.addScalar('quality/floor_fid', q.floorFid, epoch);
    return path.join(this.runDir, METRICS_FILE);
  }

  /** Per-step records ([dLoss, gLoss, dReal, dFake] each) of `epoch` after global step `stepsBefore`. */
  recordSteps(epoch: number, stepsBefore: number, per: Float32Array): void {
    this.losses.push(...appendLosses(this.runDir, epoch, stepsBefore, per));
  }

  /** real.png (and TensorBoard's 'real'): the first training images, once per run folder. */
  realImages(pixels: Uint8Array, count: number): void {
    const file = path.join(this.runDir, 'real.png');
    if (fs.existsSync(file)) return;
    const { channels, size } = this.opts.image;
    const real = { data: pixels.subarray(0, count * channels * size * size), shape: imagesShape(this.opts.image, count) };
    saveImageGrid(file, real, { nrow: 8 });
    this.writer?.addImageGrid('real', real, 0, { nrow: 8 });
  }

  /** samples/epoch-NNN.png (and TensorBoard's 'samples') from G's images of the fixed noise. Returns the file. */
  samples(epoch: number, images: Float32Array): string {
    const { channels, size } = this.opts.image;
    const batch = { data: images, shape: imagesShape(this.opts.image, images.length / (channels * size * size)) };
    const file = path.join(this.runDir, 'samples', `epoch-${String(epoch).padStart(3, '0')}.png`);
    saveImageGrid(file, batch, { nrow: 8, range: this.opts.range });
    this.writer?.addImageGrid('samples', batch, epoch, { nrow: 8, range: this.opts.range });
    return file;
  }

  /** loss.png and loss.svg, unless already drawn at this step; a failure is a warning, not an error. */
  async lossPlot(globalStep: number): Promise<string | undefined> {
    const png = path.join(this.runDir, 'loss.png');
    if (this.losses.length === 0) return undefined;
    if (this.lastPlotStep === globalStep && fs.existsSync(png)) return png;
    try {
      const { pngPath } = await writeLossPlot(this.runDir, this.losses, { title: this.opts.title });
      this.lastPlotStep = globalStep;
      return pngPath;
    } catch (e) {
      this.opts.onWarning(new Error(`could not render the loss plot: ${(e as Error).message}`));
      return undefined;
    }
  }

  flush(): void {
    this.writer?.flush();
  }

  /** Closes the TensorBoard event file (pending events are written). */
  close(): void {
    this.writer?.close();
    this.writer = null;
  }
}
