/**
 * The one noise function of the facade: G's input as the preset's training step draws it (uniform on
 * [low, high) as torch.rand * (high - low) + low, or standard normal as torch.randn), in the same
 * order and from the same generator as the fused native step and PyTorch; for sampling, normal noise
 * may be truncated to [-T, T] (the truncation trick). Drawing with a seed leaves the global generators
 * as they were.
 */
import { randomInt } from 'node:crypto';
import { type Device } from '../tensor/dtype';
import { checkInteger, checkNumber, checkOneOf, describeValue, readOptions } from '../util/options';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type NoiseSpec } from './step-spec';

export interface NoiseOptions {
  /** Where to draw (the device's own generator; default 'cpu'). */
  device?: Device;
  /** Draw from this seed and restore the global generators afterwards; default: the global generator. */
  seed?: number;
  /**
   * Normal noise only: N(0, 1) truncated to [-T, T] (BigGAN's truncation trick: fidelity for variety),
   * T a finite number > 0. Refused for uniform noise.
   */
  truncation?: number;
}

/** The spec's fields, checked before anything is drawn (a NaN dimension reaches no op). */
function checkSpec(spec: NoiseSpec): Required<NoiseSpec> {
  if (typeof spec !== 'object' || spec === null)
    throw new TypeError(`noise(spec): expected a NoiseSpec { dist, dim, low?, high?, shape? }, got ${describeValue(spec)}`);
  const dist = checkOneOf(spec.dist, 'noise.dist', ['uniform', 'normal'] as const);
  const dim = checkInteger(spec.dim, 'noise.dim', { min: 1 });
  const bound = (v: unknown, name: string, dflt: number) => (v === undefined ? dflt : checkNumber(v, `noise.${name}`));
  const shape = spec.shape ?? [spec.dim];
  if (!Array.isArray(shape) || shape.length < 1 || shape.some((d) => !Number.isSafeInteger(d) || d < 1) || shape.reduce((a, b) => a * b, 1) !== spec.dim)
    throw new RangeError(`noise.shape: expected positive integers whose product is noise.dim (${spec.dim}), got ${describeValue(spec.shape)}`);
  return { dist, dim, low: bound(spec.low, 'low', -1), high: bound(spec.high, 'high', 1), shape };
}

/**
 * An explicit truncation checked against the noise it would truncate: a finite number > 0, and normal
 * noise (uniform noise has no tails to cut: refused, not ignored). undefined when none is given.
 */
export function checkTruncation(spec: NoiseSpec, value: unknown, label = 'truncation'): number | undefined {
  if (value === undefined) return undefined;
  const t = checkNumber(value, label, { gt: 0 });
  if (spec.dist !== 'normal') throw new TypeError(`${label}: got ${t}, but truncation applies to normal noise only; this generator's noise is ${spec.dist}`);
  return t;
}

/**
 * N(0, 1) truncated to [-t, t], float32 [shape] on `device`. Exactly the distribution of BigGAN's trick
 * (values outside [-t, t] redrawn from N(0, 1) until all are inside), sampled by the inverse CDF
 * instead of by rejection: z = sqrt(2) * erfinv(erf(t / sqrt(2)) * (2u - 1)), u ~ U[0, 1). Its CDF is
 * (Phi(z) - Phi(-t)) / (Phi(t) - Phi(-t)), the truncated normal's. Why not rejection: its rounds grow
 * as log(count) / P(|z| <= t) (about 1100 at t = 0.01) with a read-back each, and the seed's stream
 * would depend on the values drawn; here the cost is fixed for every t, nothing is read back, and the
 * draw order is simple: one torch.rand of shape's count float64 values from `device`'s generator (the
 * seed's when given), nothing else. The same seed thus gives the same noise every time (other noise
 * than the untruncated draw's). float64, so that erfinv near +-1 keeps the tails; the float32 result
 * is clamped to the largest float32 <= t, which only moves values that rounding put outside.
 */
function truncatedNormal(shape: number[], t: number, device: Device): Tensor {
  const edge = float32AtMost(t);
  return torch.scope(() => {
    const a = torch.erf(torch.tensor(t / Math.SQRT2, { dtype: 'float64', device }));
    const u = torch.rand(shape, { dtype: 'float64', device });
    return torch.erfinv(u.mul(2).sub(1).mul(a)).mul(Math.SQRT2).float().clamp(-edge, edge);
  });
}

/** The largest float32 value <= x (x > 0). */
function float32AtMost(x: number): number {
  const f = Math.fround(x);
  if (f <= x) return f;
  const bits = new Uint32Array(new Float32Array([f]).buffer);
  bits[0] -= 1; // positive floats order as their bits: one step down (Infinity -> the largest finite)
  return new Float32Array(bits.buffer)[0];
}

/** `n` noise samples [n, ...spec.shape] ([n, spec.dim] by default; see above). */
export function noise(spec: NoiseSpec, n: number, opts: NoiseOptions | null = {}): Tensor {
  const s = checkSpec(spec);
  checkInteger(n, 'noise count', { min: 1 });
  const o = readOptions('noise', opts, ['device', 'seed', 'truncation'], { label: 'noise(options)', optional: true });
  const device = o.deviceOr('device', 'cpu');
  const seed = o.seedOr('seed', undefined);
  const truncation = checkTruncation(s, o.get('truncation'), o.label('truncation'));
  const draw = () => {
    if (truncation !== undefined) return truncatedNormal([n, ...s.shape], truncation, device);
    if (s.dist === 'normal') return torch.randn([n, ...s.shape], { device });
    const { low, high } = s;
    return torch.scope(() =>
      torch
        .rand([n, ...s.shape], { device })
        .mul(high - low)
        .add(low),
    );
  };
  if (seed === undefined) return draw();
  return withRngState(() => {
    torch.manualSeed(seed);
    return draw();
  });
}

/**
 * Runs `fn` and then puts the global generators back as they were (CPU, and CUDA when available),
 * so that whatever `fn` draws (or seeds) does not change later draws.
 */
export function withRngState<T>(fn: () => T): T {
  const cpu = torch.getRngState('cpu');
  const cuda = torch.cuda.isAvailable() ? torch.getRngState('cuda') : null;
  try {
    return fn();
  } finally {
    torch.setRngState(cpu, 'cpu');
    if (cuda) torch.setRngState(cuda, 'cuda');
    cpu.dispose();
    cuda?.dispose();
  }
}

/** A random seed, for drawing without one while never advancing the global generator. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 31);
}
