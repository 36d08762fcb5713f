/**
 * The one noise function of the facade: G's input as the preset's training step draws it (uniform on
 * [low, high) as torch.rand * (high - low) + low, or standard normal as torch.randn), in the same
 * order and from the same generator as the fused native step and PyTorch. Drawing with a seed leaves
 * the global generators as they were.
 */
import { randomInt } from 'node:crypto';
import { checkDevice, describeValue, type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type NoiseSpec } from './step-spec';

export interface NoiseOptions {
  /** Where to draw (the device's own generator; default 'cpu'). */
  device?: Device;
  /** Draw from this seed and restore the global generators afterwards; default: the global generator. */
  seed?: number;
}

/** The spec's fields, checked before anything is drawn (a NaN dimension reaches no op). */
function checkSpec(spec: NoiseSpec): Required<NoiseSpec> {
  if (typeof spec !== 'object' || spec === null)
    throw new TypeError(`noise(spec): expected a NoiseSpec { dist, dim, low?, high?, shape? }, got ${describeValue(spec)}`);
  if (spec.dist !== 'uniform' && spec.dist !== 'normal') throw new RangeError(`noise.dist: expected 'uniform' or 'normal', got ${describeValue(spec.dist)}`);
  if (!Number.isSafeInteger(spec.dim) || spec.dim < 1) throw new RangeError(`noise.dim: expected an integer >= 1, got ${describeValue(spec.dim)}`);
  const bound = (v: unknown, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`noise.${name}: expected a finite number, got ${describeValue(v)}`);
    return v;
  };
  const shape = spec.shape ?? [spec.dim];
  if (!Array.isArray(shape) || shape.length < 1 || shape.some((d) => !Number.isSafeInteger(d) || d < 1) || shape.reduce((a, b) => a * b, 1) !== spec.dim)
    throw new RangeError(`noise.shape: expected positive integers whose product is noise.dim (${spec.dim}), got ${describeValue(spec.shape)}`);
  return { dist: spec.dist, dim: spec.dim, low: bound(spec.low, 'low', -1), high: bound(spec.high, 'high', 1), shape };
}

/** `n` noise samples [n, ...spec.shape] ([n, spec.dim] by default; see above). */
export function noise(spec: NoiseSpec, n: number, opts: NoiseOptions | null = {}): Tensor {
  const s = checkSpec(spec);
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`noise count: expected an integer >= 1, got ${describeValue(n)}`);
  if (opts !== null && (typeof opts !== 'object' || Array.isArray(opts))) {
    throw new TypeError(`noise(options): expected an object { device?, seed? }, got ${describeValue(opts)}`);
  }
  const device = opts?.device === undefined ? 'cpu' : checkDevice(opts.device, 'noise: device');
  const draw = () => {
    if (s.dist === 'normal') return torch.randn([n, ...s.shape], { device });
    const { low, high } = s;
    return torch.scope(() =>
      torch
        .rand([n, ...s.shape], { device })
        .mul(high - low)
        .add(low),
    );
  };
  const seed = opts?.seed;
  if (seed === undefined) return draw();
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`noise: seed: expected an integer >= 0, got ${describeValue(seed)}`);
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
