import { SingleBar } from 'cli-progress';
import { formatDuration, formatLoss, formatRate } from './summary';

/** One training step's numbers. `epoch` counts from 1; `step` is the steps done in this epoch (1..stepsPerEpoch). */
export interface StepEvent {
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  dLoss: number;
  gLoss: number;
  /** Mean D(x) on real images. */
  dReal?: number;
  /** Mean D(G(z)) on generated images. */
  dFake?: number;
  imagesPerSec?: number;
}

/** The end of an epoch: mean losses, duration and, optionally, the sample grid written. */
export interface EpochEndEvent {
  epoch: number;
  epochs: number;
  dLoss: number;
  gLoss: number;
  seconds: number;
  dReal?: number;
  dFake?: number;
  imagesPerSec?: number;
  samplePath?: string;
  /** This epoch's quality metrics (--eval-every), when it was evaluated. */
  quality?: { fid: number; inceptionScore: number; coverage: number; labelAccuracy: number | null };
}

/** A writable stream; `isTTY` (as on process.stderr) selects the live bar. */
export type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface ProgressOptions {
  /** 0: print nothing; 1: bar or periodic lines and a line per epoch; 2: also D(x) and D(G(z)). Default 1. */
  verbose?: 0 | 1 | 2;
  /** Force the live bar (true) or plain lines (false). Default: the stream's isTTY. */
  tty?: boolean;
  /** Plain-line mode: a line at each step that is a multiple of this. Default: a tenth of an epoch. */
  everySteps?: number;
  /** Plain-line mode: a line when this many seconds have passed since the last one. Default 30. */
  everySeconds?: number;
  /** Bar redraws per second. Default 5. */
  fps?: number;
  /** Clock in milliseconds (tests). Default Date.now. */
  now?: () => number;
}

const BAR_WIDTH = 20;

/**
 * Shows training progress on the stream it is given, and nowhere else. On a TTY: a cli-progress
 * bar per epoch (epoch, step/total, run ETA, D and G loss, images/s), replaced by one line when the
 * epoch ends. Elsewhere (CI logs, files): plain lines on the first step, at every multiple of
 * `everySteps` steps, when `everySeconds` have passed since the last line, and at each epoch end. At verbose 0 it writes nothing. Call close()
 * when training stops, also on errors, so that a live bar's timer is cleared.
 */
export class TrainingProgress {
  private readonly stream: ProgressStream;
  private readonly verbose: 0 | 1 | 2;
  private readonly tty: boolean;
  private readonly everySeconds: number;
  private readonly everySteps?: number;
  private readonly fps: number;
  private readonly now: () => number;
  private bar: SingleBar | null = null;
  private barEpoch = -1;
  private last: StepEvent | null = null;
  private startTime = NaN;
  private startGlobal = 0;
  private lastLineTime = NaN;

  constructor(stream: ProgressStream, opts: ProgressOptions = {}) {
    this.stream = stream;
    this.verbose = opts.verbose ?? 1;
    this.tty = opts.tty ?? stream.isTTY === true;
    this.everySteps = opts.everySteps;
    this.everySeconds = opts.everySeconds ?? 30;
    this.fps = opts.fps ?? 5;
    this.now = opts.now ?? Date.now;
  }

  /** Seconds left for the whole run, from the step rate since the first event; NaN before it is known. */
  etaSeconds(ev: StepEvent): number {
    const global = (ev.epoch - 1) * ev.stepsPerEpoch + ev.step;
    const elapsed = (this.now() - this.startTime) / 1000;
    const done = global - this.startGlobal;
    if (!(elapsed > 0) || done <= 0) return NaN;
    return ((ev.epochs * ev.stepsPerEpoch - global) * elapsed) / done;
  }

  step(ev: StepEvent): void {
    if (this.verbose === 0) return;
    const first = this.last === null;
    if (first) {
      this.startTime = this.now();
      this.startGlobal = (ev.epoch - 1) * ev.stepsPerEpoch + ev.step;
    }
    this.last = ev;
    if (this.tty) this.updateBar(ev);
    else this.maybeLine(ev, first);
  }

  epochEnd(ev: EpochEndEvent): void {
    if (this.verbose === 0) return;
    this.stopBar();
    let line = `epoch ${ev.epoch}/${ev.epochs} done in ${ev.seconds.toFixed(1)}s | D ${formatLoss(ev.dLoss)} G ${formatLoss(ev.gLoss)}`;
    if (this.verbose >= 2 && (ev.dReal !== undefined || ev.dFake !== undefined)) {
      line += ` | D(x) ${fmt3(ev.dReal)} D(G(z)) ${fmt3(ev.dFake)}`;
    }
    if (ev.imagesPerSec !== undefined) line += ` | ${formatRate(ev.imagesPerSec)} img/s`;
    if (this.last && this.last.epoch === ev.epoch && ev.epoch < ev.epochs) {
      line += ` | ETA ${formatDuration(this.etaSeconds({ ...this.last, step: this.last.stepsPerEpoch }))}`;
    }
    const q = ev.quality;
    if (q)
      line += ` | FID ${q.fid.toFixed(2)} IS ${q.inceptionScore.toFixed(2)} coverage ${q.coverage.toFixed(2)}${q.labelAccuracy === null ? '' : ` label acc ${q.labelAccuracy.toFixed(3)}`}`;
    if (ev.samplePath) line += ` | samples ${ev.samplePath}`;
    this.write(line);
    this.lastLineTime = this.now();
  }

  /** Writes a message line (at verbose >= 1) without garbling a live bar. */
  log(message: string): void {
    if (this.verbose === 0) return;
    if (this.bar && this.last) {
      // clear the bar, print the message, and start the bar again below it
      this.stopBar();
      this.write(message);
      this.updateBar(this.last);
    } else this.write(message);
  }

  /** Stops a live bar (leaving no timer behind). Safe to call more than once. */
  close(): void {
    this.stopBar();
  }

  private write(line: string): void {
    this.stream.write(`${line}\n`);
  }

  private stepLine(ev: StepEvent): string {
    const pct = Math.floor((100 * ev.step) / ev.stepsPerEpoch);
    let line = `epoch ${ev.epoch}/${ev.epochs} step ${ev.step}/${ev.stepsPerEpoch} (${pct}%) | D ${formatLoss(ev.dLoss)} G ${formatLoss(ev.gLoss)}`;
    if (this.verbose >= 2) line += ` | D(x) ${fmt3(ev.dReal)} D(G(z)) ${fmt3(ev.dFake)}`;
    if (ev.imagesPerSec !== undefined) line += ` | ${formatRate(ev.imagesPerSec)} img/s`;
    return `${line} | ETA ${formatDuration(this.etaSeconds(ev))}`;
  }

  private maybeLine(ev: StepEvent, first: boolean): void {
    const now = this.now();
    if (first) this.lastLineTime = now;
    const every = this.everySteps ?? Math.max(1, Math.round(ev.stepsPerEpoch / 10));
    const due = first || ev.step % every === 0 || now - this.lastLineTime >= this.everySeconds * 1000;
    // the epoch-end line reports an epoch's last step
    if (!due || (!first && ev.step >= ev.stepsPerEpoch)) return;
    this.write(this.stepLine(ev));
    this.lastLineTime = now;
  }

  private updateBar(ev: StepEvent): void {
    if (this.bar && this.barEpoch !== ev.epoch) this.stopBar();
    const payload = { ev };
    if (!this.bar) {
      this.bar = new SingleBar({
        stream: this.stream,
        format: (_opts, params, p: { ev: StepEvent }) => this.barLine(p.ev, params.value, params.total),
        fps: this.fps,
        clearOnComplete: true,
        hideCursor: null,
        gracefulExit: false,
        forceRedraw: true,
        linewrap: null,
        emptyOnZero: true,
      });
      this.barEpoch = ev.epoch;
      this.bar.start(ev.stepsPerEpoch, ev.step, payload);
    } else {
      this.bar.update(ev.step, payload);
    }
  }

  private barLine(ev: StepEvent, value: number, total: number): string {
    const filled = total > 0 ? Math.min(BAR_WIDTH, Math.round((BAR_WIDTH * value) / total)) : 0;
    const bar = '\u2588'.repeat(filled) + '\u2591'.repeat(BAR_WIDTH - filled);
    let line = `Epoch ${ev.epoch}/${ev.epochs} ${bar} ${value}/${total} | ETA ${formatDuration(this.etaSeconds(ev))} | D ${formatLoss(ev.dLoss)} G ${formatLoss(ev.gLoss)}`;
    if (this.verbose >= 2) line += ` | D(x) ${fmt3(ev.dReal)} D(G(z)) ${fmt3(ev.dFake)}`;
    if (ev.imagesPerSec !== undefined) line += ` | ${formatRate(ev.imagesPerSec)} img/s`;
    const cols = this.stream.columns;
    return cols && line.length > cols - 1 ? line.slice(0, cols - 1) : line;
  }

  private stopBar(): void {
    if (!this.bar) return;
    this.bar.stop();
    this.bar = null;
    this.barEpoch = -1;
  }
}

function fmt3(v: number | undefined): string {
  return v === undefined ? '-' : Number.isFinite(v) ? v.toFixed(3) : String(v);
}
