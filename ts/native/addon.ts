/**
 * The native addon's surface, typed: one interface per native class and the addon's functions.
 * Loading lives in load.ts; this file is what every other module imports.
 *
 * The option objects below say exactly what the C++ reads (native/js_args.h): a field marked optional
 * takes the default noted beside it when undefined; a field of the wrong type, or a string outside its
 * union, throws a TypeError naming the field (e.g. "GanStep: spec.dLossReduction: expected one of
 * 'sum', 'mean', got 'meen'").
 */
import { type PixelRange } from '../util/pixels';

/** dtypes and devices, named as in PyTorch (torch.float32 is 'float32'); tensor/dtype.ts checks them. */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  dtype(): string;
  device(): string;
  requiresGrad(): boolean;
  setRequiresGrad(v: boolean): void;
  grad(): NativeTensor | null;
  /** Checked as PyTorch's `x.grad = g`: same shape, dtype and device; only null clears. */
  setGrad(g: NativeTensor | null): void;
  /** retainGraph defaults to createGraph, as in PyTorch. */
  backward(gradient?: NativeTensor | null, retainGraph?: boolean, createGraph?: boolean): void;
  item(): number | boolean;
  toTypedArray(): Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
  isLeaf(): boolean;
  sameAs(o: unknown): boolean;
  nbytes(): number;
}

export interface NativeOp {
  call(args: unknown[], kwargs?: Record<string, unknown>): unknown;
  schema(): string;
}

/** new NativeAdam(params, options): defaults are torch.optim.Adam's. */
export interface NativeAdamOptions {
  lr?: number; // 1e-3, >= 0
  beta1?: number; // 0.9, in [0, 1)
  beta2?: number; // 0.999, in [0, 1)
  eps?: number; // 1e-8, >= 0
  weightDecay?: number; // 0, >= 0
  amsgrad?: boolean; // false
  maximize?: boolean; // false
  fused?: boolean; // false
}

/** new NativeSGD(params, options): defaults are torch.optim.SGD's. */
export interface NativeSGDOptions {
  lr?: number; // 1e-3, >= 0
  momentum?: number; // 0, >= 0
  dampening?: number; // 0
  weightDecay?: number; // 0
  nesterov?: boolean; // false; needs momentum > 0 and dampening 0
  maximize?: boolean; // false
}

/** One parameter's Adam state (PyTorch's state_dict()['state'][i], camelCase). setState copies the tensors. */
export interface NativeAdamState {
  step: number; // an integer >= 0
  expAvg: NativeTensor;
  expAvgSq: NativeTensor;
  maxExpAvgSq?: NativeTensor | null; // amsgrad only
}

/** One parameter's SGD state; no buffer until a step with momentum. */
export interface NativeSGDState {
  momentumBuffer?: NativeTensor | null;
}

/** An optimizer handle; S is its per-parameter state. setState's index is an integer in [0, params). */
export interface NativeOptimizer<S extends NativeAdamState | NativeSGDState = NativeAdamState | NativeSGDState> {
  step(): void;
  zeroGrad(): void;
  getLr(): number;
  setLr(lr: number): void;
  getState(): (S | null)[];
  setState(index: number, state: S | null): void;
}

/**
 * The layers and the step variant are declared once, above this floor: each layer kind by its module
 * class in ts/nn (its spec schema and `nativeFields()`; ts/nn/spec.ts's NativeLayer is their union),
 * the step by ts/gan/step-spec.ts's schema (GanStepSpec). This floor may import neither, so it takes
 * them as plain objects; the C++ readers check every field by name ("GanStep: spec.loss: ...",
 * "generator.0: weight: ...") as they do for a caller writing JavaScript.
 */
export interface NativeLayer {
  /** The module's class name: 'Linear', 'Conv2d', ... */
  readonly kind: string;
  /** Its state-dict prefix, which errors name it by. */
  readonly name: string;
  readonly [field: string]: unknown;
}

/** A GanStepSpec (ts/gan/step-spec.ts). */
export interface NativeGanSpec {
  readonly [field: string]: unknown;
}

/** new NativeGanStep(options) */
export interface NativeGanStepOptions {
  g: NativeLayer[];
  d: NativeLayer[];
  optG: NativeOptimizer;
  optD: NativeOptimizer;
  spec: NativeGanSpec;
  ema?: NativeLayer[]; // the EMA generator's layers (spec.ema): same structure as g
  capturable?: boolean; // true on CUDA, false on the CPU
  cudaGraphs?: boolean; // true
  fastPath?: boolean; // true
  precision?: 'fp32' | 'bf16' | 'fp16'; // 'fp32'; forward passes and losses under autocast otherwise
  processGroup?: NativeDistGroup; // data-parallel over it
}

/**
 * NativeGanStep.trainEpoch(data, options). While the epoch is in flight the tensors it owns (both models'
 * parameters, buffers and gradients, both optimizers and their state, the dataset) are locked: any native
 * call that would read or write one throws "... is in use by a running trainEpoch (wait for it to finish
 * or abort it)". Shape, dtype, device and dispose() stay available.
 */
export interface NativeEpochOptions {
  batchSize: number; // a positive integer, at most the dataset's size
  labels?: NativeTensor | null; // [N] integer class indices on the models' device (conditional GANs only, then required)
  shuffle?: boolean; // true
  dropLast?: boolean; // false
  seed?: number; // 0, an integer >= 0
  normalize?: PixelRange; // '[-1,1]' (uint8 data only)
  progressEvery?: number; // 50, a positive integer
  recordSteps?: boolean; // false
  startStep?: number; // 0, an integer in [0, steps)
  threads?: number; // the calling thread's intra-op threads, a positive integer
  /** Called on the JS thread every progressEvery steps; if it throws, the epoch stops and rejects with that error. */
  onProgress?: ((p: NativeProgress) => void) | null;
}

export interface NativeStepResult {
  dLoss: number;
  gLoss: number;
  dReal: number;
  dFake: number;
}

export interface NativeEpochResult extends NativeStepResult {
  steps: number;
  images: number;
  perStep?: NativeTensor;
  cudaGraph: string;
}

export interface NativeProgress extends NativeStepResult {
  step: number;
  totalSteps: number;
}

export interface NativeStepInputs {
  labels?: NativeTensor | null;
  zD?: NativeTensor | null;
  yD?: NativeTensor | null;
  zG?: NativeTensor | null;
  yG?: NativeTensor | null;
}

/**
 * step, stepD, stepG and generate run on the shared training thread and wait for it: while any epoch
 * runs there (of any GanStep, in any thread of the process) they throw instead of blocking the event loop.
 */
export interface NativeGanStep {
  /** labels: the real batch's (conditional only); zD/yD, zG/yG: D's and G's noise and fake labels (drawn when absent). */
  step(real: NativeTensor, inputs?: NativeStepInputs | null): NativeStepResult;
  stepD(
    real: NativeTensor,
    inputs?: { labels?: NativeTensor | null; z?: NativeTensor | null; yFake?: NativeTensor | null } | null,
  ): Pick<NativeStepResult, 'dLoss' | 'dReal' | 'dFake'>;
  stepG(n: number, inputs?: { z?: NativeTensor | null; yFake?: NativeTensor | null } | null): Pick<NativeStepResult, 'gLoss' | 'dFake'>;
  setTraining(g: boolean, d: boolean): void;
  /** One epoch at a time per process (the training thread is shared): refused while another runs. */
  trainEpoch(data: NativeTensor, opts: NativeEpochOptions): Promise<NativeEpochResult>;
  requestStop(): boolean;
  isBusy(): boolean;
  noise(n: number): NativeTensor;
  /** n labels uniform in [0, classes), int64 (conditional only). */
  drawLabels(n: number): NativeTensor;
  generate(z: NativeTensor, labels?: NativeTensor | null, ema?: boolean): NativeTensor;
  graphStatus(): string;
  isCapturable(): boolean;
  /** "fast" or "autograd: <why>" */
  path(): string;
  /** Resets the fast path's phase times and turns their measuring on or off; false when step() takes the autograd path. */
  profile(on: boolean): boolean;
  phases(): FastPathPhases | null;
  /** The G updates the EMA has followed; with n, sets it (a resumed run). */
  emaUpdates(n?: number): number;
  /** The G loss a D-only step reports (null before the first G update); with v, sets it. */
  lastGLoss(v?: number): number | null;
  gradScale(): number | null;
}

/** Milliseconds per phase of the fast path since profile(true), over `steps` steps. */
export interface FastPathPhases {
  dForward: number;
  dBackward: number;
  gForward: number;
  gBackward: number;
  updates: number;
  /** losses, their gradients, checks, noise and label draws */
  losses: number;
  /** dropout masks (drawn as PyTorch's dropout draws them) */
  masks: number;
  steps: number;
}

export interface NativeInfo {
  builtWith: string;
  cudaBuild: boolean;
  /** CUDA graph capture compiled in (a CUDA LibTorch and its CUDA headers at build time). */
  cudaGraphs: boolean;
  cudaAvailable: boolean;
  /** '' when a GPU is usable; else "CUDA is not available: <the driver's reason>" (native/cuda_status.h). */
  cudaUnavailable: string;
  cudaDeviceCount: number;
  cudaDevices: string[];
  numThreads: number;
  numInteropThreads: number;
  blas: string;
  parallelInfo: string;
  config: string;
  /** c10d's ProcessGroupNCCL compiled in and usable with the NCCL LibTorch loads. */
  ncclAvailable: boolean;
  /** The NCCL version LibTorch loads ("2.30.7"), or null. */
  ncclVersion: string | null;
  /** Why NCCL is not available ('' when it is). */
  ncclMissing: string;
}

export interface NativeAddon {
  NativeTensor: new () => NativeTensor;
  fromTypedArray(data: ArrayBufferView, shape: number[], dtype: DType, device: Device): NativeTensor;
  op(name: string, overload: string): NativeOp;
  manualSeed(seed: number): void;
  getRngState(device?: Device): NativeTensor;
  setRngState(state: NativeTensor, device?: Device): void;
  /**
   * torch.autograd.grad (native/autograd.h): one gradient per input, null for an unused one when
   * allowUnused; gradOutputs null (implicit, scalar outputs only) or one per output (null: implicit).
   */
  autogradGrad(
    outputs: NativeTensor[],
    inputs: NativeTensor[],
    gradOutputs: (NativeTensor | null)[] | null,
    options: { retainGraph: boolean; createGraph: boolean; allowUnused: boolean },
  ): (NativeTensor | null)[];
  /**
   * DiffAugment (native/diff_augment.h) of a float batch [N, C, H, W]: `policy` comma-separated names of
   * 'color', 'translation', 'cutout' (an unknown one throws a TypeError naming it); '' returns x's tensor.
   * Draws from x's device's default generator; differentiable with respect to x.
   */
  diffAugment(x: NativeTensor, policy: string): NativeTensor;
  setGradEnabled(enabled: boolean): boolean;
  // torch.autocast on this thread: enter returns the [enabled, dtype] it replaced, for exit to restore
  autocastEnter(deviceType: 'cpu' | 'cuda', enabled: boolean, dtype: string): [boolean, string];
  autocastExit(deviceType: 'cpu' | 'cuda', enabled: boolean, dtype: string): void;
  isAutocastEnabled(deviceType: 'cpu' | 'cuda'): boolean;
  isGradEnabled(): boolean;
  setNumThreads(n: number): void;
  /** Routes this JS thread's NativeOp calls to the training thread (true) or not; returns the previous setting. */
  setOpsOnTrainThread(on: boolean): boolean;
  getNumThreads(): number;
  setFlushDenormal(on: boolean): boolean;
  getFlushDenormal(): boolean;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  /** Waits for all work on one CUDA device: 'cuda:N', 'cuda' or N; none: the current device (torch.cuda.synchronize). */
  cudaSynchronize(device?: string | number): void;
  info(): NativeInfo;
  NativeAdam: new (params: NativeTensor[], opts?: NativeAdamOptions) => NativeOptimizer<NativeAdamState>;
  NativeSGD: new (params: NativeTensor[], opts?: NativeSGDOptions) => NativeOptimizer<NativeSGDState>;
  NativeGanStep: new (opts: NativeGanStepOptions) => NativeGanStep;
  NativeDistGroup: { connect(opts: NativeDistOptions): Promise<NativeDistGroup> };
  /** torch.save's bytes of a dict of named tensors (native/torch_save.h). */
  pickleSave(names: string[], tensors: NativeTensor[]): Uint8Array;
  /**
   * A torch.save'd dict of tensors, read by the addon's checked zip reader and pickle machine (native/torch_save.h);
   * `what` names the file in errors, `maxBytes` bounds what it unpacks to.
   */
  pickleLoad(bytes: Uint8Array, what: string, opts?: { maxBytes?: number }): { names: string[]; tensors: NativeTensor[] };
}

/** NativeDistGroup.connect(options): a c10d TCPStore + ProcessGroupGloo or ProcessGroupNCCL (native/dist.h). */
export interface NativeDistOptions {
  backend: 'gloo' | 'nccl';
  /** NCCL: the group's GPU. */
  device?: Device;
  host: string;
  port: number;
  rank: number;
  worldSize: number;
  timeoutMs: number;
  agentStore?: boolean;
}

export interface NativeDistGroup {
  allReduce(t: NativeTensor, op: string): Promise<void>;
  broadcast(t: NativeTensor, src: number): Promise<void>;
  allGather(t: NativeTensor): Promise<NativeTensor[]>;
  barrier(): Promise<void>;
  rank(): number;
  worldSize(): number;
  backend(): 'gloo' | 'nccl';
  /** 'cpu' for Gloo, the bound GPU for NCCL. */
  device(): Device;
  destroy(): void;
}

export { AddonLoadError, libtorchInfo, loadAddon } from './load';
