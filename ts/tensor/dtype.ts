/** dtypes and devices, named as in PyTorch (torch.float32 is 'float32'). */
import { type Device, type DType } from '../native/addon';

export type { Device, DType } from '../native/addon';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];

export function isFloatingDtype(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export function checkDtype(d: unknown, what = 'dtype'): DType {
  if (typeof d !== 'string' || !(DTYPES as readonly string[]).includes(d)) {
    throw new TypeError(`${what}: expected one of ${DTYPES.join(', ')}, got ${JSON.stringify(d)}`);
  }
  return d as DType;
}

export function checkDevice(d: unknown, what = 'device'): Device {
  if (typeof d !== 'string' || !/^(cpu|cuda(:\d+)?)$/.test(d)) {
    throw new TypeError(`${what}: expected 'cpu', 'cuda' or 'cuda:N', got ${JSON.stringify(d)}`);
  }
  return d as Device;
}
