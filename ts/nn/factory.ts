/** What every module constructor reads: dtype and device of its tensors, and its options object. */
import { checkDtype, type Device, type DType } from '../tensor/dtype';
import { type OptionsReader, readOptions } from '../util/options';

export function checkPositiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TypeError(`${what}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

/**
 * A module constructor's options object: unknown keys refused, dtype and device read (default float32
 * on the CPU) for its tensors; `r` reads the module's own keys, each named "<Module>: <key>".
 */
export function moduleOptions<K extends string>(
  name: string,
  opts: unknown,
  keys: readonly K[],
): { r: OptionsReader<K | 'dtype' | 'device'>; factory: Required<FactoryOptions> } {
  const r = readOptions<K | 'dtype' | 'device'>(name, opts, ['dtype', 'device', ...keys], { optional: true });
  return { r, factory: { dtype: r.has('dtype') ? checkDtype(r.get('dtype'), r.label('dtype')) : 'float32', device: r.deviceOr('device', 'cpu') } };
}
