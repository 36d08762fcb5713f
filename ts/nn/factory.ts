/** What every module constructor reads: dtype and device of its tensors, and its options object; the spec field of spectral norm. */
import { z } from 'zod';
import { checkDtype, type Device, type DType } from '../tensor/dtype';
import { type OptionsReader, readOptions } from '../util/options';
import { bool, expected, int, intAtLeast, num, obj } from '../util/schema';

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

const SN_FORM = 'true, false or { nPowerIterations?, eps?, dim? }';
/**
 * The `spectralNorm` field of a Linear, Conv2d or ConvTranspose2d spec: true, or the options of
 * nn.utils.parametrizations.spectralNorm (PyTorch's defaults: 1 power iteration, eps 1e-12, dim 0, 1 for
 * ConvTranspose2d). fromSpec applies it to the layer right after building it (ts/nn/from-spec.ts).
 */
export const spectralNormField = z
  .union(
    [
      bool,
      obj(
        {
          nPowerIterations: intAtLeast(1).optional(),
          eps: num('a number > 0').positive(expected('a number > 0')).optional(),
          dim: int().optional(),
        },
        SN_FORM,
      ),
    ],
    expected(SN_FORM),
  )
  .optional();
