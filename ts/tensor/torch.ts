/** The `torch` namespace: tensor creation, RNG, grad mode, devices and threads, as in PyTorch. */
import { loadAddon } from '../native/addon';
import { readOptions } from '../util/options';
import { checkDtype, type Device, type DType, describeValue } from './dtype';
import { keep, scope } from './scope';
import { callOp, Tensor } from './tensor';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

const TENSOR_KEYS = ['dtype', 'device', 'requiresGrad'] as const;

/** A factory's TensorOptions, each field checked (dtype defaulting to `dflt`, device to 'cpu'). */
function opts(o: TensorOptions | undefined, dflt: DType, who: string): Required<TensorOptions> {
  const r = readOptions(who, o, TENSOR_KEYS, { optional: true });
  return {
    dtype: r.has('dtype') ? checkDtype(r.get('dtype'), r.label('dtype')) : dflt,
    device: r.deviceOr('device', 'cpu'),
    requiresGrad: r.booleanOr('requiresGrad', false),
  };
}

function finish(t: Tensor, o: Required<TensorOptions>): Tensor {
  if (o.requiresGrad) t.requiresGrad = true;
  return t;
}

function shapeOf(shape: unknown, what: string): number[] {
  if (typeof shape === 'number') shape = [shape];
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
    throw new TypeError(`${what}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

type Nested = number | boolean | bigint | Nested[];

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/**
 * Flat elements as the native constructor takes them: all BigInt (int64 by default, exact, as Python
 * ints make int64 tensors) or all numbers and booleans (float32 by default). A mix would lose either
 * int64's exactness or the numbers' fractions, so it is an error.
 */
function flatData(flat: unknown[], what: string): { data: Float64Array | BigInt64Array; dflt: DType } {
  const big = typeof flat[0] === 'bigint';
  flat.forEach((v, i) => {
    if (big) {
      if (typeof v !== 'bigint')
        throw new TypeError(`${what}: element ${i} is ${describeValue(v)} but element 0 is a BigInt: give all elements as BigInt (int64) or all as numbers`);
      if (v < INT64_MIN || v > INT64_MAX) throw new RangeError(`${what}: element ${i} is ${v}n, outside int64 (${INT64_MIN}n to ${INT64_MAX}n)`);
    } else if (typeof v === 'bigint') {
      throw new TypeError(`${what}: element ${i} is ${v}n but element 0 is a number: give all elements as BigInt (int64) or all as numbers`);
    } else if (typeof v !== 'number' && typeof v !== 'boolean') {
      throw new TypeError(`${what}: element ${i} is ${typeof v === 'string' ? JSON.stringify(v) : describeValue(v)}, expected a number`);
    }
  });
  return big ? { data: BigInt64Array.from(flat as bigint[]), dflt: 'int64' } : { data: Float64Array.from(flat as number[], Number), dflt: 'float32' };
}

function inferShape(data: Nested, what: string): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0];
  }
  const flatLen = shape.reduce((a, b) => a * b, 1);
  const flat = Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data];
  if (flat.length !== flatLen)
    throw new TypeError(`${what}: nested arrays are ragged (expected ${flatLen} numbers for shape [${shape}], found ${flat.length})`);
  return shape;
}

// By the array's own tag, not instanceof: arrays from another realm (a vm context, jest, the addon's
// results there) are typed arrays too.
const TYPED_DTYPES: Record<string, DType> = {
  Float32Array: 'float32',
  Float64Array: 'float64',
  BigInt64Array: 'int64',
  Int32Array: 'int32',
  Int16Array: 'int16',
  Int8Array: 'int8',
  Uint8Array: 'uint8',
  Uint8ClampedArray: 'uint8',
};
const typedDtype = (a: ArrayBufferView): DType | null => TYPED_DTYPES[Object.prototype.toString.call(a).slice(8, -1)] ?? null;

/**
 * torch.tensor: from a typed array with a shape, from nested arrays, or from a number. Numbers default
 * to float32 (JS numbers do not say int or float); pass { dtype: 'int64' } for integers, or give BigInts
 * (1n), which make an exact int64 tensor as Python ints do.
 */
export function tensor(data: ArrayBufferView | Nested, shapeOrOpts?: number[] | TensorOptions, maybeOpts?: TensorOptions): Tensor {
  const shapeArg = Array.isArray(shapeOrOpts) ? shapeOrOpts : undefined;
  const given = Array.isArray(shapeOrOpts) ? maybeOpts : shapeOrOpts;
  const addon = loadAddon();
  if (ArrayBuffer.isView(data)) {
    const src = typedDtype(data);
    if (!src)
      throw new TypeError(
        'torch.tensor: unsupported typed array (use Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, Int8Array or Uint8Array)',
      );
    const len = (data as unknown as ArrayLike<unknown>).length;
    const shape = shapeArg ? shapeOf(shapeArg, 'torch.tensor') : [len];
    const o = opts(given, src, 'torch.tensor');
    return finish(new Tensor(addon.fromTypedArray(data, shape, o.dtype, o.device)), o);
  }
  if (typeof data === 'number' || typeof data === 'boolean' || typeof data === 'bigint') {
    const { data: flat, dflt } = flatData([data], 'torch.tensor');
    const o = opts(given, typeof data === 'boolean' ? 'bool' : dflt, 'torch.tensor');
    return finish(new Tensor(addon.fromTypedArray(flat, [], o.dtype, o.device)), o);
  }
  if (!Array.isArray(data)) throw new TypeError(`torch.tensor: expected a typed array, nested arrays or a number, got ${describeValue(data)}`);
  const shape = inferShape(data, 'torch.tensor');
  const { data: flat, dflt } = flatData((data as unknown[]).flat(Infinity), 'torch.tensor');
  const o = opts(given, dflt, 'torch.tensor');
  return finish(new Tensor(addon.fromTypedArray(flat, shapeArg ?? shape, o.dtype, o.device)), o);
}

function factory(name: string, overload: string, args: unknown[], given: TensorOptions | undefined, dflt: DType = 'float32'): Tensor {
  const o = opts(given, dflt, name.replace('aten::', 'torch.'));
  return finish(callOp(name, overload, args, { dtype: o.dtype, device: o.device, layout: null, pin_memory: null }) as Tensor, o);
}

export const zeros = (shape: number[] | number, o?: TensorOptions) => factory('aten::zeros', '', [shapeOf(shape, 'zeros')], o);
export const ones = (shape: number[] | number, o?: TensorOptions) => factory('aten::ones', '', [shapeOf(shape, 'ones')], o);
export const empty = (shape: number[] | number, o?: TensorOptions) => factory('aten::empty', 'memory_format', [shapeOf(shape, 'empty')], o);
export function full(shape: number[] | number, value: number, o?: TensorOptions): Tensor {
  if (typeof value !== 'number') throw new TypeError(`full: fill value must be a number, got ${JSON.stringify(value)}`);
  return factory('aten::full', '', [shapeOf(shape, 'full'), value], o);
}
/** Uniform on [0, 1), from the global generator (equal to PyTorch's after the same manualSeed). */
export const rand = (shape: number[] | number, o?: TensorOptions) => factory('aten::rand', '', [shapeOf(shape, 'rand')], o);
/** Standard normal, from the global generator (equal to PyTorch's after the same manualSeed). */
export const randn = (shape: number[] | number, o?: TensorOptions) => factory('aten::randn', '', [shapeOf(shape, 'randn')], o);
/** Integers in [low, high), int64 by default. */
export function randint(low: number, high: number, shape: number[] | number, o?: TensorOptions): Tensor {
  return factory('aten::randint', 'low', [low, high, shapeOf(shape, 'randint')], o, 'int64');
}
export function randperm(n: number, o?: TensorOptions): Tensor {
  return factory('aten::randperm', '', [n], o, 'int64');
}
/** arange(end) or arange(start, end, step); int64 when all arguments are integers, as in PyTorch. */
export function arange(start: number, end?: number, step = 1, o?: TensorOptions): Tensor {
  if (end === undefined) [start, end] = [0, start];
  const allInt = [start, end, step].every(Number.isInteger);
  return factory('aten::arange', 'start_step', [start, end, step], o, allInt ? 'int64' : 'float32');
}
export const zerosLike = (t: Tensor) => callOp('aten::zeros_like', '', [t]) as Tensor;
export const onesLike = (t: Tensor) => callOp('aten::ones_like', '', [t]) as Tensor;
export const randnLike = (t: Tensor) => callOp('aten::randn_like', '', [t]) as Tensor;
export const fullLike = (t: Tensor, v: number) => callOp('aten::full_like', '', [t, v]) as Tensor;

export const cat = (tensors: Tensor[], dim = 0) => callOp('aten::cat', '', [tensors, dim]) as Tensor;
export const stack = (tensors: Tensor[], dim = 0) => callOp('aten::stack', '', [tensors, dim]) as Tensor;
export const matmul = (a: Tensor, b: Tensor) => a.matmul(b);
export const sigmoid = (t: Tensor) => t.sigmoid();
export const tanh = (t: Tensor) => t.tanh();
/** The error function and its inverse, elementwise (torch.erf, torch.erfinv). */
export const erf = (t: Tensor) => callOp('aten::erf', '', [t]) as Tensor;
export const erfinv = (t: Tensor) => callOp('aten::erfinv', '', [t]) as Tensor;
export const maximum = (a: Tensor, b: Tensor) => callOp('aten::maximum', '', [a, b]) as Tensor;
export const where = (cond: Tensor, a: Tensor, b: Tensor) => callOp('aten::where', 'self', [cond, a, b]) as Tensor;

/** Seeds the global CPU (and CUDA) generators, as torch.manual_seed. */
export function manualSeed(seed: number): void {
  loadAddon().manualSeed(seed);
}
export function getRngState(device: Device = 'cpu'): Tensor {
  return new Tensor(loadAddon().getRngState(device));
}
export function setRngState(state: Tensor, device: Device = 'cpu'): void {
  loadAddon().setRngState(state._native, device);
}

/** Runs fn with gradient tracking off on this thread, as `with torch.no_grad():`. fn must be synchronous. */
export function noGrad<T>(fn: () => T): T {
  const addon = loadAddon();
  const prev = addon.setGradEnabled(false);
  try {
    const r = fn();
    if (r instanceof Promise) throw new TypeError('noGrad(fn): fn must be synchronous (grad mode is per thread and would leak across awaits)');
    return r;
  } finally {
    addon.setGradEnabled(prev);
  }
}
export function enableGrad<T>(fn: () => T): T {
  const addon = loadAddon();
  const prev = addon.setGradEnabled(true);
  try {
    return fn();
  } finally {
    addon.setGradEnabled(prev);
  }
}
export const isGradEnabled = () => loadAddon().isGradEnabled();

/**
 * Runs `fn` (synchronous) with every ATen operator it calls executed on the process's training thread,
 * where GanStep steps, generates and trains epochs; this thread waits for each. A process whose
 * parallel LibTorch work all runs on one thread keeps OpenMP's fast spin-waiting: one parallel op on
 * another thread gives the process a second thread team and made every later fused step ~2x slower on
 * 2 cores. So work between a GanStep's epochs (evaluation, sampling) belongs here. Each op call pays
 * a thread hand-off (microseconds), so small-op loops are faster outside. Refused while a trainEpoch
 * holds the thread.
 */
export function onTrainingThread<T>(fn: () => T): T {
  if (typeof fn !== 'function') throw new TypeError(`onTrainingThread(fn): expected a function, got ${typeof fn}`);
  const addon = loadAddon();
  const was = addon.setOpsOnTrainThread(true);
  try {
    const out = fn();
    if (out instanceof Promise) throw new TypeError('onTrainingThread(fn): fn must be synchronous (it returned a Promise)');
    return out;
  } finally {
    addon.setOpsOnTrainThread(was);
  }
}

export function setNumThreads(n: number): void {
  loadAddon().setNumThreads(n);
}
export const getNumThreads = () => loadAddon().getNumThreads();

/**
 * As torch.set_flush_denormal: treat denormal floats as zero on the CPU (false where unsupported).
 * Off by default, as in PyTorch. Applies process-wide here: this thread and the fused trainer's.
 * A training run whose values underflow can otherwise slow down several-fold (seed000: 5 -> 13 ms/step).
 */
export function setFlushDenormal(on: boolean): boolean {
  return loadAddon().setFlushDenormal(on);
}
export const getFlushDenormal = () => loadAddon().getFlushDenormal();

export const cuda = {
  isAvailable: (): boolean => loadAddon().cudaIsAvailable(),
  deviceCount: (): number => loadAddon().cudaDeviceCount(),
  /**
   * As torch.cuda.synchronize(device): waits for all kernels on every stream of one CUDA device, `device`
   * ('cuda:N', 'cuda', or the index N) or, by default, the current one (cuda:0: nothing here changes it).
   * Throws where CUDA is not available, and for a device that is not a CUDA one.
   */
  synchronize: (device?: Device | number): void => loadAddon().cudaSynchronize(device),
};

export * as autograd from './autograd';
export { autocast, isAutocastEnabled, type AutocastDevice, type AutocastOptions } from './autocast';
export { scope, keep, Tensor };
