/**
 * The one noise function of the facade: G's input as the preset's training step draws it (uniform on
 * [low, high) as torch.rand * (high - low) + low, or standard normal as torch.randn), in the same
 * order and from the same generator as the fused native step and PyTorch. Drawing with a seed leaves
 * the global generators as they were.
 */
import { randomInt } from 'node:crypto';
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type NoiseSpec } from './step-spec';

export interface NoiseOptions {
  /** Where to draw (the device's own generator; default 'cpu'). */
  device?: Device;
  /** Draw from this seed and restore the global generators afterwards; default: the global generator. */
  seed?: number;
}

/** `n` noise vectors [n, spec.dim] (see above). */
export function noise(spec: NoiseSpec, n: number, opts: NoiseOptions = {}): Tensor {
  if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`noise count: expected an integer >= 1, got ${n}`);
  const device = opts.device ?? 'cpu';
  const draw = () => {
    if (spec.dist === 'normal') return torch.randn([n, spec.dim], { device });
    if (spec.dist !== 'uniform') throw new RangeError(`noise.dist: expected 'uniform' or 'normal', got ${JSON.stringify(spec.dist)}`);
    const low = spec.low ?? -1;
    const high = spec.high ?? 1;
    return torch.scope(() =>
      torch
        .rand([n, spec.dim], { device })
        .mul(high - low)
        .add(low),
    );
  };
  if (opts.seed === undefined) return draw();
  const seed = opts.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`seed: expected an integer >= 0, got ${seed}`);
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
