/** dtypes and devices, named as in PyTorch (torch.float32 is 'float32'). */
import { type Device, type DType } from '../native/addon';

export type { Device, DType } from '../native/addon';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

export function isFloatingDtype(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

// JSON for strings ("gpu"), as these messages always were; describeValue for the rest (a BigInt has no JSON).
const quoted = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : describeValue(v));

export function checkDtype(d: unknown, what = 'dtype'): DType {
  if (typeof d !== 'string' || !(DTYPES as readonly string[]).includes(d)) {
    throw new TypeError(`${what}: expected one of ${DTYPES.join(', ')}, got ${quoted(d)}`);
  }
  return d as DType;
}

const DEVICE_RE = /^(cpu|cuda(:\d+)?)$/;

export function checkDevice(d: unknown, what = 'device'): Device {
  if (typeof d !== 'string' || !DEVICE_RE.test(d)) {
    throw new TypeError(`${what}: expected 'cpu', 'cuda' or 'cuda:N', got ${quoted(d)}`);
  }
  return d as Device;
}

/** A value as an error message shows it: strings quoted ('tpu'), BigInts with their n, objects as JSON. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`;
  if (typeof v === 'symbol') return v.toString();
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  try {
    const json = JSON.stringify(v);
    if (json !== undefined) return json.length > 80 ? `${json.slice(0, 77)}...` : json;
  } catch {
    // cyclic, or holding BigInts: fall through to the class name
  }
  return `a ${(v as object).constructor?.name ?? 'object'}`;
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
    if (DEVICE_RE.test(target)) return { device: target as Device };
  } else if (typeof target === 'object' && target !== null && !Array.isArray(target)) {
    for (const k of Object.keys(target)) {
      if (k !== 'device' && k !== 'dtype') throw new TypeError(`${who}: unknown option '${k}' (expected device, dtype)`);
    }
    const o = target as { device?: unknown; dtype?: unknown };
    return {
      device: o.device === undefined ? undefined : checkDevice(o.device, `${who}: device`),
      dtype: o.dtype === undefined ? undefined : checkDtype(o.dtype, `${who}: dtype`),
    };
  }
  throw new TypeError(`${who}: expected a dtype (${DTYPES.join(', ')}) or a device ('cpu', 'cuda', 'cuda:N'), got ${describeValue(target)}`);
}
