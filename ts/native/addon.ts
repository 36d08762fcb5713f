/**
 * The native addon's surface, typed: one interface per native class and the addon's functions.
 * Loading lives in load.ts; this file is what every other module imports.
 */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
  shape(): number[];
  dtype(): string;
  device(): string;
  requiresGrad(): boolean;
  setRequiresGrad(v: boolean): void;
  grad(): NativeTensor | null;
  setGrad(g: NativeTensor | null): void;
  backward(gradient?: NativeTensor | null, retainGraph?: boolean): void;
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

export interface NativeOptimizer {
  step(): void;
  zeroGrad(): void;
  getLr(): number;
  setLr(lr: number): void;
  getState(): (Record<string, NativeTensor | number | null> | null)[];
  setState(index: number, state: Record<string, unknown> | null): void;
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

export interface NativeGanStep {
  step(real: NativeTensor, zD?: NativeTensor | null, zG?: NativeTensor | null): NativeStepResult;
  stepD(real: NativeTensor, z?: NativeTensor | null): Pick<NativeStepResult, 'dLoss' | 'dReal' | 'dFake'>;
  stepG(n: number, z?: NativeTensor | null): Pick<NativeStepResult, 'gLoss' | 'dFake'>;
  setTraining(g: boolean, d: boolean): void;
  trainEpoch(data: NativeTensor, opts: Record<string, unknown>, onProgress?: (p: NativeProgress) => void): Promise<NativeEpochResult>;
  requestStop(): boolean;
  isBusy(): boolean;
  noise(n: number): NativeTensor;
  generate(z: NativeTensor): NativeTensor;
  graphStatus(): string;
  isCapturable(): boolean;
}

export interface NativeInfo {
  builtWith: string;
  cudaBuild: boolean;
  /** CUDA graph capture compiled in (a CUDA LibTorch and its CUDA headers at build time). */
  cudaGraphs: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  cudaDevices: string[];
  numThreads: number;
  numInteropThreads: number;
  blas: string;
  parallelInfo: string;
  config: string;
}

export interface NativeAddon {
  NativeTensor: new () => NativeTensor;
  fromTypedArray(data: ArrayBufferView, shape: number[], dtype: string, device: string): NativeTensor;
  op(name: string, overload: string): NativeOp;
  manualSeed(seed: number): void;
  getRngState(device?: string): NativeTensor;
  setRngState(state: NativeTensor, device?: string): void;
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setFlushDenormal(on: boolean): boolean;
  getFlushDenormal(): boolean;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  info(): NativeInfo;
  NativeAdam: new (params: NativeTensor[], opts: Record<string, unknown>) => NativeOptimizer;
  NativeSGD: new (params: NativeTensor[], opts: Record<string, unknown>) => NativeOptimizer;
  NativeGanStep: new (opts: Record<string, unknown>) => NativeGanStep;
}

export { AddonLoadError, libtorchInfo, loadAddon } from './load';
