/** dtypes and devices, named as in PyTorch (torch.float32 is 'float32'). */
import { type Device, type DType } from '../native/addon';
import { describeValue } from '../util/describe';
import { checkDevice as checkDeviceName, isDeviceName, readOptions } from '../util/options';

export { describeValue } from '../util/describe';

export type { Device, DType } from '../native/addon';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

export function isFloatingDtype(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export function checkDtype(d: unknown, what = 'dtype'): DType {
  if (typeof d !== 'string' || !(DTYPES as readonly string[]).includes(d)) {
    throw new TypeError(`${what}: expected one of ${DTYPES.join(', ')}, got ${describeValue(d)}`);
  }
  return d as DType;
}

/** 'cpu', 'cuda' or 'cuda:N' (util/options.ts's one check). */
export function checkDevice(d: unknown, what = 'device'): Device {
  return checkDeviceName(d, what);
}

export interface ToTarget {
  device?: Device;
  dtype?: DType;
}

/**
 * The argument of Tensor.to and Module.to: a dtype name, a device name, or { device?, dtype? }. A string
 * that is neither names both forms, so that to('tpu') is not reported as a bad dtype.
 */
export function parseToTarget(target: unknown, who: string): ToTarget {
  if (typeof target === 'string') {
    if ((DTYPES as readonly string[]).includes(target)) return { dtype: target as DType };
    if (isDeviceName(target)) return { device: target as Device };
  } else if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
    const o = readOptions(who, target, ['device', 'dtype']);
    return { device: o.deviceOr('device', undefined), dtype: o.has('dtype') ? checkDtype(o.get('dtype'), o.label('dtype')) : undefined };
  }
  throw new TypeError(`${who}: expected a dtype (${DTYPES.join(', ')}) or a device ('cpu', 'cuda', 'cuda:N'), got ${describeValue(target)}`);
}

export function checkShape(shape: unknown, what: string): number[] {
  if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d))) {
    throw new TypeError(`${what}: expected an array of integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

export interface MemoryFormatOptions {
  memoryFormat?: 'contiguous' | 'channelsLast';
}

/** The ATen memory_format argument for `{ memoryFormat }` (default 'contiguous'); another value is an error naming it. */
export function memoryFormatArg(fn: string, options: MemoryFormatOptions | undefined): string {
  const f = readOptions(fn, options, ['memoryFormat'], { optional: true }).oneOfOr('memoryFormat', ['contiguous', 'channelsLast'] as const, 'contiguous');
  return f === 'channelsLast' ? 'channels_last' : 'contiguous';
}
