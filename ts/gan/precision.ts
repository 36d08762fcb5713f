/**
 * The fused step's precision (GanStepOptions.precision, the config's `precision`, `--precision`):
 * 'fp32', autocast to 'bf16' or 'fp16' (fp32 master weights, losses and updates), or 'auto', resolved
 * here with the reason said. Whether the device can run the asked one is checked natively (fp16 needs
 * CUDA; bf16 on CUDA needs compute capability 8.0).
 */
import { cpuFlags } from '../util/cpu-flags';

export const PRECISIONS = ['auto', 'fp32', 'bf16', 'fp16'] as const;
export type Precision = (typeof PRECISIONS)[number];
export type ResolvedPrecision = Exclude<Precision, 'auto'>;

/** What `auto` picks on `deviceType`, or what was asked, and why. */
export function resolvePrecision(asked: Precision, deviceType: 'cpu' | 'cuda'): { precision: ResolvedPrecision; reason: string } {
  if (asked !== 'auto') return { precision: asked, reason: 'asked' };
  if (deviceType === 'cuda') {
    return { precision: 'fp32', reason: "auto: fp32 (bf16 on CUDA has not been verified on a GPU for this library yet; ask for 'bf16' to use it)" };
  }
  // bf16 pays on a CPU with AMX (its tile units run bf16 products several times faster than fp32); with
  // AVX512-BF16 alone, autocast's casts cost more than they save (a dcgan step measured 1.10x slower).
  if (cpuFlags().has('amx_bf16')) return { precision: 'bf16', reason: 'auto: bf16 (this CPU has AMX: bf16 matrix products run faster than fp32)' };
  return { precision: 'fp32', reason: 'auto: fp32 (this CPU has no AMX, where bf16 autocast is slower than fp32)' };
}
