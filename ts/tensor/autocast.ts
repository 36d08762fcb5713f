/**
 * torch.autocast: mixed precision for a synchronous block, as `with torch.autocast(device_type, dtype=...)`.
 * LibTorch's own autocast runs inside it (its op lists: matrix products and convolutions in the lower
 * precision, reductions and losses where PyTorch keeps fp32); weights stay fp32. Per thread, like grad
 * mode; ops sent to the training thread (torch.onTrainingThread) take it along.
 */
import { loadAddon } from '../native/addon';
import { readOptions } from '../util/options';
import { type DType } from './dtype';

export type AutocastDevice = 'cpu' | 'cuda';

export interface AutocastOptions {
  /** The lower precision: 'bfloat16' (default on the CPU, as PyTorch) or 'float16' (default on CUDA). */
  dtype?: DType;
  /** false runs fn with autocast off (a region inside an autocast block that needs fp32). Default true. */
  enabled?: boolean;
}

const DEVICES: readonly AutocastDevice[] = ['cpu', 'cuda'];
const LOWER: readonly DType[] = ['bfloat16', 'float16'];

/** Runs fn (synchronous) with autocast on `deviceType` set as asked, restoring the previous setting after. */
export function autocast<T>(deviceType: AutocastDevice, opts: AutocastOptions, fn: () => T): T {
  if (!DEVICES.includes(deviceType)) throw new TypeError(`autocast: deviceType: expected 'cpu' or 'cuda', got ${JSON.stringify(deviceType)}`);
  const o = readOptions('autocast', opts, ['dtype', 'enabled'], { optional: true });
  const dtype = o.oneOfOr('dtype', LOWER, deviceType === 'cpu' ? 'bfloat16' : 'float16');
  const enabled = o.booleanOr('enabled', true);
  if (typeof fn !== 'function') throw new TypeError(`autocast(deviceType, options, fn): expected a function, got ${typeof fn}`);
  const addon = loadAddon();
  const [wasEnabled, wasDtype] = addon.autocastEnter(deviceType, enabled, dtype);
  try {
    const out = fn();
    if (out instanceof Promise) throw new TypeError('autocast(fn): fn must be synchronous (autocast is per thread and would leak across awaits)');
    return out;
  } finally {
    addon.autocastExit(deviceType, wasEnabled, wasDtype);
  }
}

/** Whether autocast is on for `deviceType` on this thread, as torch.is_autocast_enabled(device_type). */
export function isAutocastEnabled(deviceType: AutocastDevice = 'cpu'): boolean {
  if (!DEVICES.includes(deviceType)) throw new TypeError(`isAutocastEnabled: deviceType: expected 'cpu' or 'cuda', got ${JSON.stringify(deviceType)}`);
  return loadAddon().isAutocastEnabled(deviceType);
}
