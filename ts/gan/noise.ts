/**
 * The one noise function of the facade: G's input as the preset's training step draws it (uniform on
 * [low, high) as torch.rand * (high - low) + low, or standard normal as torch.randn), in the same
 * order and from the same generator as the fused native step and PyTorch. Drawing with a seed leaves
 * the global generators as they were.
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

/** `n` noise samples [n, ...spec.shape] ([n, spec.dim] by default; see above). */
export function noise(spec: NoiseSpec, n: number, opts: NoiseOptions | null = {}): Tensor {
  const s = checkSpec(spec);
  checkInteger(n, 'noise count', { min: 1 });
  const o = readOptions('noise', opts, ['device', 'seed'], { label: 'noise(options)', optional: true });
  const device = o.deviceOr('device', 'cpu');
  const seed = o.seedOr('seed', undefined);
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
