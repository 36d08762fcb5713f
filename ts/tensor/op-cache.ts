/** ATen operators by name and overload, looked up in the dispatcher once each. */
import { loadAddon, type NativeOp, type NativeTensor } from '../native/addon';

const opCache = new Map<string, NativeOp>();

export function op(name: string, overload = ''): NativeOp {
  const key = `${name}.${overload}`;
  let h = opCache.get(key);
  if (!h) {
    h = loadAddon().op(name, overload);
    opCache.set(key, h);
  }
  return h;
}

/** Whether `v` is a native tensor handle (an op's result), not a number, array or facade Tensor. */
export function isNative(v: unknown): v is NativeTensor {
  return typeof v === 'object' && v !== null && typeof (v as NativeTensor).isDisposed === 'function' && typeof (v as NativeTensor).shape === 'function';
}
