/**
 * A loaded generator for other Node programs: G held in eval mode on a worker thread, loaded once, its
 * images asked for many times while the caller's event loop keeps serving. Calls made together, or
 * while a forward pass runs, or within `maxWaitMs` (up to `maxBatch` images) run as one forward pass and
 * are split back; each call's noise comes from its own seed, so its images equal what it gets alone
 * (padRows says how closely).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { checkTruncation, randomSeed } from '../gan/noise';
import { getPreset, imagesShape, type Preset } from '../gan/presets';
import { type Samples } from '../gan/sample';
import { pickEmaGenerator } from '../store/generator';
import { readRunInfo } from '../store/run-dir';
import { type DeviceName, readOptions } from '../util/options';
import { packageRoot } from '../util/package';
import { type PixelRange } from '../util/pixels';
import { type BatchReply, errorFrom, type SampleRequest, type SampleResult, type WorkerError, type WorkerInit } from './protocol';

/** Every Generator's workers share one lock around seeded draws and forwards (WorkerInit.lock). */
const DRAW_LOCK = new SharedArrayBuffer(4);

export interface GeneratorOptions {
  /** Device to run G on (default 'cpu'). */
  device?: DeviceName;
  /** The EMA of G (default: where the run keeps one, as sample() does); true is refused where there is none. */
  ema?: boolean;
  /** With a torch.save'd state_dict file as source: the preset whose generator it is. */
  preset?: string;
  /** Most images one forward pass takes from coalesced calls (default 256); a larger call runs alone. */
  maxBatch?: number;
  /**
   * How long the first call of a batch waits for others, in ms. Default 0: no wait beyond the current
   * turn of the event loop; calls made in the same turn, or arriving while a batch runs, still share a
   * forward pass (under load batches form by themselves: bench:serve measured 0 faster than 2 ms).
   */
  maxWaitMs?: number;
  /** Called after each forward pass: the calls and images it served and how long it took (ms). */
  onBatch?: (info: { calls: number; images: number; ms: number }) => void;
}

export interface GenerateOptions {
  /** Number of images (default 64). */
  count?: number;
  /** Conditional generators: one class for all images or one per image; default drawn from the seed. */
  labels?: number | readonly number[];
  /** Noise seed (default: a random one, reported in the result). */
  seed?: number;
  /** Normal noise truncated to [-truncation, truncation] (see noise()). */
  truncation?: number;
}

export interface PngOptions extends GenerateOptions {
  /** Images per grid row (default 8). */
  nrow?: number;
}

// As scope.ts does for Symbol.dispose: vm contexts (jest) of Node 20 may lack it
(Symbol as { asyncDispose?: symbol }).asyncDispose ??= Symbol.for('nodejs.asyncDispose');

const GEN_KEYS = ['count', 'labels', 'seed', 'truncation'] as const;
const LOAD_KEYS = ['device', 'ema', 'preset', 'maxBatch', 'maxWaitMs', 'onBatch'] as const;

/** The compiled worker: beside this file in lib/, or lib/'s copy when this runs from ts/ (tests). */
function workerFile(): string {
  const here = path.join(__dirname, 'generator-worker.js');
  return fs.existsSync(here) ? here : path.join(packageRoot, 'lib', 'serve', 'generator-worker.js');
}

interface Pending {
  request: SampleRequest;
  resolve: (r: SampleResult) => void;
  reject: (e: Error) => void;
}

/** A loaded generator (see loadGenerator). close() or `using` frees it. */
export class Generator {
  readonly classes: number;
  readonly range: PixelRange;
  #queue: Pending[] = [];
  #queuedImages = 0;
  #cancelWait: (() => void) | undefined; // the pending flush of a waiting batch
  #inFlight: Pending[] | undefined;
  #nextId = 1;
  #closed = false;
  #failed: Error | undefined;
  #drained: (() => void) | undefined;
  #closing: Promise<void> | undefined;

  /** Use loadGenerator. */
  constructor(
    private readonly worker: Worker,
    readonly preset: Preset,
    readonly source: string,
    readonly ema: boolean,
    private readonly opts: { maxBatch: number; maxWaitMs: number; onBatch?: GeneratorOptions['onBatch'] },
  ) {
    this.classes = preset.step.conditioning?.classes ?? 0;
    this.range = preset.normalize;
    worker.on('message', (m: BatchReply | { type: 'failed'; id: number; error: WorkerError }) => this.#settle(m));
    worker.on('error', (e) => this.#fail(e));
    worker.on('exit', (code) => this.#fail(new Error(`Generator: its worker thread ended (exit code ${code})`)));
    worker.unref(); // a generator nobody closed does not keep the process alive while idle
  }

  /** Calls waiting for a batch plus the calls of the batch running. */
  get queueDepth(): number {
    return this.#queue.length + (this.#inFlight?.length ?? 0);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** `count` images from seeded noise: Samples (Float32Array, shape, range, labels, seed). */
  async sample(opts: GenerateOptions = {}): Promise<Samples> {
    const request = this.#request('sample', opts, []);
    const r = await this.#enqueue(request);
    return {
      images: r.images,
      shape: imagesShape(this.preset.image, request.count),
      range: this.range,
      seed: request.seed,
      ...(r.labels ? { labels: r.labels } : {}),
      ...(this.ema ? { ema: true } : {}),
    };
  }

  /** The same images as a PNG grid (torchvision's make_grid layout, `nrow` per row, padding 2). */
  async png(opts: PngOptions = {}): Promise<Buffer> {
    const request = this.#request('png', opts, ['nrow']);
    const r = await this.#enqueue(request);
    return Buffer.from(r.png!.buffer, r.png!.byteOffset, r.png!.byteLength);
  }

  /** Refuses new calls, lets the queued and running ones finish, then ends the worker. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = (async () => {
      if (this.#queue.length || this.#inFlight) await new Promise<void>((r) => (this.#drained = r));
      await this.worker.terminate();
    })();
    return this.#closing;
  }

  [Symbol.dispose](): void {
    void this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #request(who: string, opts: unknown, extra: readonly string[]): SampleRequest {
    const o = readOptions(`Generator.${who}`, opts, [...GEN_KEYS, ...extra], { optional: true });
    const count = o.integerOr('count', 64, { min: 1 });
    const labels = o.get('labels');
    if (labels !== undefined) checkLabels(labels, count, this.classes, `Generator.${who}`);
    const truncation = checkTruncation(this.preset.step.noise, o.get('truncation'), `Generator.${who}: truncation`);
    const nrow = extra.includes('nrow') ? o.integerOr('nrow', 8, { min: 1 }) : undefined;
    return {
      count,
      seed: o.seedOr('seed', undefined) ?? randomSeed(),
      ...(labels !== undefined ? { labels: typeof labels === 'number' ? labels : [...(labels as number[])] } : {}),
      ...(truncation !== undefined ? { truncation } : {}),
      ...(nrow !== undefined ? { nrow } : {}),
    };
  }

  #enqueue(request: SampleRequest): Promise<SampleResult> {
    if (this.#closed) return Promise.reject(new Error('Generator: closed (close() was called); load another with loadGenerator()'));
    if (this.#failed) return Promise.reject(this.#failed);
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      this.#queuedImages += request.count;
      if (this.#inFlight) return; // sent when the running batch returns
      if (this.#queuedImages >= this.opts.maxBatch) this.#flush();
      else this.#cancelWait ??= this.#waitThenFlush();
    });
  }

  #waitThenFlush(): () => void {
    if (this.opts.maxWaitMs > 0) {
      const t = setTimeout(() => this.#flush(), this.opts.maxWaitMs);
      return () => clearTimeout(t);
    }
    const i = setImmediate(() => this.#flush());
    return () => clearImmediate(i);
  }

  /** Sends the calls at the queue's head, up to maxBatch images (at least one call), as one batch. */
  #flush(): void {
    this.#cancelWait?.();
    this.#cancelWait = undefined;
    if (this.#inFlight || !this.#queue.length) return;
    let images = 0;
    let n = 0;
    while (n < this.#queue.length && (n === 0 || images + this.#queue[n]!.request.count <= this.opts.maxBatch)) images += this.#queue[n++]!.request.count;
    const batch = this.#queue.splice(0, n);
    this.#queuedImages -= images;
    this.#inFlight = batch;
    this.#started = performance.now();
    this.worker.ref();
    this.worker.postMessage({ id: this.#nextId++, requests: batch.map((p) => p.request) });
  }

  #started = 0;

  #settle(m: BatchReply | { type: 'failed'; id: number; error: WorkerError }): void {
    const batch = this.#inFlight ?? [];
    this.#inFlight = undefined;
    this.worker.unref();
    if (m.type === 'done') {
      this.opts.onBatch?.({ calls: batch.length, images: batch.reduce((s, p) => s + p.request.count, 0), ms: performance.now() - this.#started });
      for (const [i, p] of batch.entries()) p.resolve(m.results[i]!);
    } else {
      const e = errorFrom(m.error);
      for (const p of batch) p.reject(e);
    }
    // calls that came in meanwhile waited for this batch already: send them at once
    if (this.#queue.length) this.#flush();
    else this.#drained?.();
  }

  #fail(e: Error): void {
    if (this.#closing && !this.#queue.length && !this.#inFlight) return; // terminate()'s own exit
    this.#failed = e;
    for (const p of [...(this.#inFlight ?? []), ...this.#queue]) p.reject(e);
    this.#inFlight = undefined;
    this.#queue = [];
    this.#drained?.();
  }
}

/** Labels as labelsFor checks them, without a tensor (the caller's thread does no tensor work). */
function checkLabels(given: unknown, count: number, classes: number, who: string): void {
  if (!classes) throw new TypeError(`${who}: labels apply to conditional presets (cgan); this generator is not conditional`);
  const list = typeof given === 'number' ? [given] : given;
  if (!Array.isArray(list)) throw new TypeError(`${who}: labels: expected a class index or an array of them, got ${JSON.stringify(given)}`);
  if (typeof given !== 'number' && list.length !== count) throw new RangeError(`${who}: labels: expected ${count} labels (one per image), got ${list.length}`);
  for (const y of list) {
    if (!Number.isInteger(y) || y < 0 || y >= classes)
      throw new RangeError(`${who}: label ${JSON.stringify(y)} is outside [0, ${classes}) (the generator's ${classes} classes)`);
  }
}

/**
 * Loads G once from `source` (a run folder: its latest checkpoint, verified against trainer.json; or a
 * torch.save'd state_dict file with `preset`) onto a worker thread and returns the Generator sampling
 * from it. Errors (a missing checkpoint, NaN weights, bad options) name the value.
 */
export async function loadGenerator(source: string, opts: GeneratorOptions = {}): Promise<Generator> {
  const o = readOptions('loadGenerator', opts, LOAD_KEYS, { optional: true });
  if (typeof source !== 'string' || !source)
    throw new TypeError(`loadGenerator: source: expected a run folder or a generator file (a path), got ${JSON.stringify(source)}`);
  const device = o.deviceOr('device', 'cpu');
  const askedEma = o.booleanOr('ema', undefined);
  const presetName = o.stringOr('preset', undefined, 'a preset name');
  const maxBatch = o.integerOr('maxBatch', 256, { min: 1 });
  const maxWaitMs = o.numberOr('maxWaitMs', 0, { min: 0 });
  const onBatch = o.get('onBatch');
  if (onBatch !== undefined && typeof onBatch !== 'function') throw o.error('onBatch', 'a function');
  const isFile = fs.existsSync(source) && fs.statSync(source).isFile();
  if (isFile && presetName === undefined)
    throw new TypeError(`loadGenerator: ${source} is a file: give the preset whose generator it holds (preset: 'vanilla', ...)`);
  if (!isFile && presetName !== undefined) throw new TypeError('loadGenerator: preset applies to a torch.save file as source; a run folder has its own');
  const preset = isFile ? getPreset(presetName!) : readRunInfo(source).config.preset;
  const ema = pickEmaGenerator(source, preset, askedEma, 'loadGenerator');
  const init: WorkerInit = { source, preset, device, ema, imageShape: imagesShape(preset.image, 1).slice(1), lock: DRAW_LOCK };
  const worker = new Worker(workerFile(), { workerData: init });
  // removeAllListeners() would drop the Worker's own newListener hook that starts its message port
  const listeners: [string, (arg: never) => void][] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      listeners.push(
        ['message', (m: { type: string; error?: WorkerError }) => (m.type === 'ready' ? resolve() : reject(errorFrom(m.error!)))],
        ['error', reject],
        ['exit', (code: number) => reject(new Error(`loadGenerator: the worker thread ended while loading (exit code ${code})`))],
      );
      for (const [event, fn] of listeners) worker.on(event, fn as (arg: unknown) => void);
    });
  } catch (e) {
    await worker.terminate();
    throw e;
  } finally {
    for (const [event, fn] of listeners) worker.off(event, fn as (arg: unknown) => void);
  }
  return new Generator(worker, preset, source, ema, { maxBatch, maxWaitMs, ...(onBatch ? { onBatch: onBatch as GeneratorOptions['onBatch'] } : {}) });
}
