/**
 * The fused step's precision (GanStepOptions.precision, the config's `precision`, `--precision`):
 * 'fp32', autocast to 'bf16' or 'fp16' (fp32 master weights, losses and updates), or 'auto', resolved
 * here with the reason said. Whether the device can run the asked one is checked natively (fp16 needs
 * CUDA; bf16 on CUDA needs compute capability 8.0).
 */
import { cpuFlags, cpuVendor } from '../util/cpu-flags';

export const PRECISIONS = ['auto', 'fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];
export type ResolvedPrecision = Exclude<Precision, 'auto'>;

/**
 * What `auto` picks on `deviceType` for a convolutional or MLP model, or what was asked, and why. On the
 * CPU it picks bf16 where it is known to pay (bench/RESULTS.md): with AMX (its tile units run bf16
 * products several times faster than fp32), and for convolutional models on an AMD CPU with AVX512-BF16
 * (dcgan and cgan steps 0.83-1.00x of the fp32 fast path's time on an AMD EPYC); not on an Intel CPU with
 * AVX512-BF16 alone (a dcgan step in PyTorch 1.10x slower than fp32 on an Intel Xeon), nor for MLPs,
 * whose fp32 fast path bf16 would leave.
 */
export function resolvePrecision(
  asked: Precision,
  deviceType: 'cpu' | 'cuda',
  model: { convolutional?: boolean } = {},
): { precision: ResolvedPrecision; reason: string } {
  if (asked !== 'auto') return { precision: asked, reason: 'asked' };
  if (deviceType === 'cuda') {
    return { precision: 'fp32', reason: "auto: fp32 (bf16 on CUDA has not been verified on a GPU for this library yet; ask for 'bf16' to use it)" };
  }
  const flags = cpuFlags();
  if (flags.has('amx_bf16')) return { precision: 'bf16', reason: 'auto: bf16 (this CPU has AMX: bf16 matrix products run faster than fp32)' };
  if (!flags.has('avx512_bf16')) return { precision: 'fp32', reason: 'auto: fp32 (this CPU has neither AMX nor AVX512-BF16: bf16 would be slower)' };
  if (cpuVendor() !== 'AuthenticAMD')
    return {
      precision: 'fp32',
      reason: "auto: fp32 (AVX512-BF16 without AMX: a bf16 dcgan step measured 1.10x slower than fp32 on an Intel Xeon; ask for 'bf16' to try it)",
    };
  if (!model.convolutional) return { precision: 'fp32', reason: "auto: fp32 (an MLP: bf16 would leave the fp32 fast path; ask for 'bf16' to try it)" };
  return { precision: 'bf16', reason: 'auto: bf16 (an AMD CPU with AVX512-BF16: convolutional steps measured 0.83-1.00x of fp32 time)' };
}
