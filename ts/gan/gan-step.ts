/**
 * GanStep: the fused native training step over facade modules (same parameter tensors, no copies) and
 * their optimizers. `step()` runs a whole D update and G update in one native call; `trainEpoch()`
 * runs an epoch over a device-resident dataset on the native training thread, off the event loop.
 *
 * While an epoch is in flight (from trainEpoch() until its promise settles) it owns its tensors: G's and
 * D's parameters, gradients and buffers, both optimizers and their state, and the dataset. Any operation
 * that would read or write one of them throws "... is in use by a running trainEpoch (wait for it to
 * finish or abort it)"; shape, dtype, device and dispose() stay available. The training thread is shared
 * by every GanStep of the process, so while an epoch runs, step(), trainDiscriminator(),
 * trainGenerator(), generate() and trainEpoch() of any GanStep throw instead of waiting.
 */
import { loadAddon, type FastPathPhases, type NativeGanStep, type NativeTensor } from '../native/addon';
import { Conv2d } from '../nn/conv';
import { toNativeLayers } from '../nn/from-spec';
import { Module } from '../nn/module';
import { Optimizer } from '../optim/optimizer';
import { ProcessGroup } from '../distributed/index';
import { Tensor } from '../tensor/tensor';
import { describeValue, type OptionsReader, readOptions, typeError } from '../util/options';
import { deepCopyModule } from '../nn/deep-copy';
import { type EpochAbortError, type EpochOptions, type EpochResult, type GanStepOptions, type StepInputs, type StepResult } from './gan-step-types';
import { PRECISIONS, type ResolvedPrecision, resolvePrecision } from './precision';
import { type GanStepSpec } from './step-spec';

export type { EpochAbortError, EpochOptions, EpochProgress, EpochResult, GanStepOptions, StepInputs, StepResult } from './gan-step-types';
export { isEpochAbort } from './gan-step-types';

const GAN_STEP_KEYS = ['capturable', 'cudaGraphs', 'fastPath', 'precision', 'processGroup'] as const satisfies readonly (keyof GanStepOptions)[];
// EpochOptions' keys; the native reader checks each field's type, range and enum (js_args.h)
const EPOCH_KEYS = [
  'batchSize',
  'labels',
  'shuffle',
  'dropLast',
  'seed',
  'normalize',
  'progressEvery',
  'onProgress',
  'recordSteps',
  'signal',
  'threads',
  'startStep',
] as const satisfies readonly (keyof EpochOptions)[];

/** The native handle of an optional tensor argument (null when absent); anything else is a TypeError. */
function nativeOf(t: unknown, what: string): NativeTensor | null {
  if (t === undefined || t === null) return null;
  if (!(t instanceof Tensor)) throw typeError(what, 'a Tensor', t);
  return t._native;
}

/** nativeOf for the tensor field `key` of an options object. */
function tensorField<K extends string>(o: OptionsReader<K>, key: K): NativeTensor | null {
  return nativeOf(o.get(key), o.label(key));
}

export class GanStep {
  /** @internal */ readonly _native: NativeGanStep;
  constructor(
    readonly generator: Module,
    readonly discriminator: Module,
    readonly optG: Optimizer,
    readonly optD: Optimizer,
    readonly spec: GanStepSpec,
    options: GanStepOptions | null = {},
  ) {
    for (const [name, m] of [
      ['generator', generator],
      ['discriminator', discriminator],
    ] as const) {
      if (!(m instanceof Module)) throw new TypeError(`GanStep(${name}): expected an nn.Module, got ${describeValue(m)}`);
    }
    for (const [name, o] of [
      ['optG', optG],
      ['optD', optD],
    ] as const) {
      if (!(o instanceof Optimizer)) throw new TypeError(`GanStep(${name}): expected an optimizer (optim.Adam or optim.SGD), got ${describeValue(o)}`);
    }
    const o = readOptions('GanStep(options)', options, GAN_STEP_KEYS, { optional: true });
    const pg = o.get('processGroup');
    if (pg !== undefined && pg !== null && !(pg instanceof ProcessGroup)) throw o.error('processGroup', 'a dist.ProcessGroup (dist.group.WORLD)');
    this.processGroup = (pg as ProcessGroup | null | undefined) ?? null;
    const asked = o.oneOfOr('precision', PRECISIONS, 'fp32');
    const first = generator.parameters()[0];
    const convolutional = [...discriminator.namedModules()].some(([, m]) => m instanceof Conv2d);
    ({ precision: this.precision, reason: this.precisionReason } = resolvePrecision(asked, first?.device.startsWith('cuda') ? 'cuda' : 'cpu', {
      convolutional,
    }));
    // The EMA generator starts as a copy of G (torch's AveragedModel deep-copies its model too).
    this.emaGenerator = spec?.ema ? deepCopyModule(generator, 'GanStep(spec.ema)').eval() : null;
    // The spec goes as it is: the native reader names a missing or wrong field ("GanStep: spec.loss: ...").
    this._native = new (loadAddon().NativeGanStep)({
      g: toNativeLayers(generator),
      d: toNativeLayers(discriminator),
      optG: optG._native,
      optD: optD._native,
      spec,
      ema: this.emaGenerator ? toNativeLayers(this.emaGenerator) : undefined,
      capturable: o.get('capturable') as boolean | undefined,
      cudaGraphs: o.get('cudaGraphs') as boolean | undefined,
      fastPath: o.get('fastPath') as boolean | undefined,
      precision: this.precision,
      processGroup: (pg as ProcessGroup | null | undefined)?._native,
    });
  }

  /** What the step computes in: 'fp32', or autocast to 'bf16' / 'fp16' (GanStepOptions.precision, 'auto' resolved). */
  readonly precision: ResolvedPrecision;
  /** Why: 'asked', or what 'auto' found ("auto: fp32 (this CPU has no AMX, ...)"). */
  readonly precisionReason: string;

  /** The group this step trains data-parallel over, or null. */
  readonly processGroup: ProcessGroup | null;

  /**
   * The exponential moving average of the generator (spec.ema), a module of its own that every G update
   * moves toward G (in eval mode: sample from it), or null without spec.ema. A resumed run loads its
   * state_dict into it and sets emaUpdates.
   */
  readonly emaGenerator: Module | null;
  /**
   * The G loss a D-only step reports (spec.dSteps > 1): the last G update's, null before the first. A run
   * resumed inside an epoch sets it from its log, so its D-only steps report what the uninterrupted run did.
   */
  get lastGLoss(): number | null {
    return this._native.lastGLoss();
  }
  set lastGLoss(v: number) {
    this._native.lastGLoss(v);
  }
  /** The G updates the EMA has followed (spec.ema.start counts them). */
  get emaUpdates(): number {
    return this._native.emaUpdates();
  }
  set emaUpdates(n: number) {
    this._native.emaUpdates(n);
  }

  /**
   * fp16's dynamic loss scale (torch.amp.GradScaler's: 65536 at first, halved after a step whose
   * gradients overflowed, whose updates were skipped, doubled after 2000 steps without); null otherwise.
   */
  get gradScale(): number | null {
    return this._native.gradScale();
  }

  /** Whether updates run sync-free (see GanStepOptions.capturable). */
  get capturable(): boolean {
    return this._native.isCapturable();
  }
  /**
   * The CUDA graph's state: 'off: <why>' (CPU, disabled, or capture failed with the reason),
   * 'warming up', or 'replaying (batch N)'.
   */
  get cudaGraph(): string {
    return this._native.graphStatus();
  }
  /**
   * Which path step() (and so trainEpoch) takes: 'fast' (the fast path: explicit forward and backward for MLP and DCGAN-style nets) or 'autograd: <why not>'
   * (a convolutional model, a CUDA device, a frozen parameter, fastPath: false, ...).
   */
  get path(): string {
    return this._native.path();
  }
  /**
   * Times the fast path's phases from now on (on: true) or stops (false), resetting them; false
   * when step() takes the autograd path. Read them with phases().
   */
  profile(on: boolean): boolean {
    return this._native.profile(on);
  }
  /** Milliseconds per phase of the fast path since profile(true) (null before its first step). */
  phases(): FastPathPhases | null {
    return this._native.phases();
  }

  private syncModes(): void {
    this._native.setTraining(this.generator.training, this.discriminator.training);
  }

  /** The number of classes of a conditional GAN (spec.conditioning), else 0. */
  get classes(): number {
    return this.spec.conditioning?.classes ?? 0;
  }

  /**
   * One D update then one G update (with spec.dSteps = k, G updates on every k-th batch only, counted by
   * batchIndex; a D-only step reports G's last loss). `labels` are the real batch's classes (conditional
   * GANs). zD/zG (and yD/yG, the fake labels) override what the step draws (parity tests feed PyTorch's);
   * without them a CUDA step runs through the captured graph once warm.
   */
  step(real: Tensor, inputs: StepInputs = {}): StepResult {
    this.syncModes();
    const i = readOptions('step', inputs, ['labels', 'zD', 'yD', 'zG', 'yG'], { label: 'step(inputs)', optional: true });
    return this._native.step(real._native, {
      labels: tensorField(i, 'labels'),
      zD: tensorField(i, 'zD'),
      yD: tensorField(i, 'yD'),
      zG: tensorField(i, 'zG'),
      yG: tensorField(i, 'yG'),
    });
  }
  /** The D update alone; `z` (a Tensor, or { labels?, z?, yFake? }) overrides its noise. */
  trainDiscriminator(real: Tensor, z?: Tensor | { labels?: Tensor; z?: Tensor; yFake?: Tensor }): Pick<StepResult, 'dLoss' | 'dReal' | 'dFake'> {
    this.syncModes();
    const i = readOptions('trainDiscriminator', z instanceof Tensor ? { z } : z, ['labels', 'z', 'yFake'], {
      label: 'trainDiscriminator(inputs)',
      form: 'a Tensor or an object { labels?, z?, yFake? }',
      optional: true,
    });
    return this._native.stepD(real._native, { labels: tensorField(i, 'labels'), z: tensorField(i, 'z'), yFake: tensorField(i, 'yFake') });
  }
  /** The G update alone on batchSize fakes; `z` (a Tensor, or { z?, yFake? }) overrides its noise. */
  trainGenerator(batchSize: number, z?: Tensor | { z?: Tensor; yFake?: Tensor }): Pick<StepResult, 'gLoss' | 'dFake'> {
    this.syncModes();
    const i = readOptions('trainGenerator', z instanceof Tensor ? { z } : z, ['z', 'yFake'], {
      label: 'trainGenerator(inputs)',
      form: 'a Tensor or an object { z?, yFake? }',
      optional: true,
    });
    return this._native.stepG(batchSize, { z: tensorField(i, 'z'), yFake: tensorField(i, 'yFake') });
  }
  /** Noise from the spec's distribution, [n, ...noise.shape] on the models' device; n is an integer >= 0. */
  noise(n: number): Tensor {
    return new Tensor(this._native.noise(n));
  }
  /** n labels uniform in [0, classes) as the step draws G's (conditional GANs only). */
  drawLabels(n: number): Tensor {
    return new Tensor(this._native.drawLabels(n));
  }
  /**
   * G's output for noise z in eval mode without gradients (for sample grids); with spec.ema the EMA
   * generator's, unless `ema: false`. It runs on the training thread like step() and trainEpoch(): a
   * process whose parallel LibTorch work all happens on one thread keeps OpenMP's fast spin-waiting (two
   * computing threads made every step ~2x slower here).
   */
  generate(z: Tensor, labels?: Tensor, opts: { ema?: boolean } = {}): Tensor {
    if (!(z instanceof Tensor)) throw new TypeError(`generate(z): expected a Tensor, got ${describeValue(z)}`);
    const ema = readOptions('generate', opts, ['ema'], { optional: true }).booleanOr('ema', this.emaGenerator !== null);
    return new Tensor(this._native.generate(z._native, nativeOf(labels, 'generate: labels'), ema));
  }
  get busy(): boolean {
    return this._native.isBusy();
  }

  /**
   * Trains one epoch on the native training thread. `data` is uint8 or float images already on the
   * models' device: [N, features] or [N, H, W] for an MLP discriminator (flattened per batch), [N, C, H, W]
   * (or [N, H, W] for one channel) for a convolutional one; `labels` for a conditional GAN. Rejects with an AbortError when `signal` aborts (at a step boundary),
   * and with the error an `onProgress` callback threw. While it runs, its tensors are locked (see above).
   */
  async trainEpoch(data: Tensor, opts: EpochOptions): Promise<EpochResult> {
    if (!(data instanceof Tensor)) throw new TypeError(`trainEpoch(data): expected a Tensor, got ${describeValue(data)}`);
    const o = readOptions('trainEpoch', opts, EPOCH_KEYS, {
      label: 'trainEpoch(options)',
      form: 'an object { batchSize, shuffle?, seed?, signal?, onProgress?, ... }',
    });
    const signal: unknown = o.get('signal');
    if (signal !== undefined && !isAbortSignal(signal)) throw o.error('signal', 'an AbortSignal');
    // data-parallel, the ranks stop together: the native loop runs a step to vote (GanStepOptions.processGroup)
    if (opts.signal?.aborted && !this.processGroup) throw abortError('epoch aborted before it started', 0);
    this.syncModes();
    const t0 = performance.now();
    // Every field goes as given: the native reader checks each (type, range, enum) and names it;
    // undefined takes the native default, which is the one documented above.
    const promise = this._native.trainEpoch(data._native, {
      batchSize: opts.batchSize,
      labels: tensorField(o, 'labels'),
      shuffle: opts.shuffle,
      dropLast: opts.dropLast,
      seed: opts.seed,
      normalize: opts.normalize,
      progressEvery: opts.progressEvery,
      recordSteps: opts.recordSteps,
      threads: opts.threads,
      startStep: opts.startStep,
      onProgress: opts.onProgress,
    });
    const onAbort = () => this._native.requestStop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const r = await promise;
      const seconds = (performance.now() - t0) / 1000;
      const perStep = takeFloat32(r.perStep);
      return {
        steps: r.steps,
        images: r.images,
        dLoss: r.dLoss,
        gLoss: r.gLoss,
        dReal: r.dReal,
        dFake: r.dFake,
        seconds,
        imagesPerSec: r.images / seconds,
        perStep,
        cudaGraph: r.cudaGraph,
      };
    } catch (e) {
      if ((e as Error).name === 'AbortError') {
        const n = e as { message: string; completedSteps?: number; perStep?: NativeTensor };
        throw abortError(n.message, n.completedSteps ?? 0, takeFloat32(n.perStep));
      }
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** An AbortSignal, from this realm or another (jest's, a Worker's). */
function isAbortSignal(v: unknown): v is AbortSignal {
  const s = v as AbortSignal | null;
  return typeof s === 'object' && s !== null && typeof s.aborted === 'boolean' && typeof s.addEventListener === 'function';
}

function abortError(message: string, completedSteps: number, perStep?: Float32Array): EpochAbortError {
  const e = new Error(message) as EpochAbortError;
  e.name = 'AbortError';
  e.completedSteps = completedSteps;
  if (perStep) e.perStep = perStep;
  return e;
}

/** A native [steps, 4] float tensor's values, the tensor freed at once. */
function takeFloat32(t: NativeTensor | undefined): Float32Array | undefined {
  if (!t) return undefined;
  const out = t.toTypedArray() as Float32Array;
  t.dispose();
  return out;
}
