/**
 * Parity with PyTorch for mixed precision (issue 26): the fused step with `precision: 'bf16'` against
 * test/parity/reference.py's run_preset under torch.autocast('cpu', dtype=torch.bfloat16) (README.md,
 * "Precision"): the forward passes and losses under autocast, backward passes, the penalty's
 * autograd.grad and the updates outside it. precision.json's variants: a BatchNorm'd conv GAN, its
 * conditional twin, an MLP (off the fast path, which says why) and WGAN-GP (the penalty's double backward).
 * Bit for bit where the reference runs live.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as torch from '../../ts/tensor/torch';
import { GanStep, type StepResult } from '../../ts/gan/gan-step';
import { type Preset, presets } from '../../ts/gan/presets';
import { batches, build, cleanup, convD, drawNoise, expectLosses, expectWeights, fixtures, load, prepare, realLabels, state } from './harness';

interface Variant {
  name: string;
  base: keyof typeof presets;
  precision: 'bf16';
}
const VARIANTS = JSON.parse(fs.readFileSync(path.join(__dirname, 'precision.json'), 'utf8')) as Variant[];
// reference.py reads the precision from the preset it is given (a GanStep option here)
const PRESETS: Record<string, Preset & { precision: string }> = Object.fromEntries(
  VARIANTS.map((v) => [v.name, { ...presets[v.base], precision: v.precision }]),
);

beforeAll(() => prepare(PRESETS), 300000);
afterAll(cleanup);

describe.each(VARIANTS)('bf16 parity with PyTorch: $name', ({ name, precision }) => {
  const p = PRESETS[name]!;
  const conv = convD(p);

  test('fused native step under autocast reproduces PyTorch’s losses and weights', () => {
    const fx = load(name);
    const m = build(p);
    const { zD, zG, yD, yG } = drawNoise(p);
    const xs = batches(p);
    const ys = realLabels(p);
    const gan = new GanStep(m.G, m.D, m.optG, m.optD, p.step, { precision });
    expect([gan.precision, gan.precisionReason]).toEqual(['bf16', 'asked']);
    expect(gan.path).toMatch(/^autograd: /);
    if (!conv && !p.step.penalty) expect(gan.path).toBe('autograd: precision bf16 runs under autocast on the autograd path (the fast path computes in fp32)');
    expectWeights(name, state(m.G, m.D), fx, 'init', 1e-7);
    torch.manualSeed(99);
    const got: StepResult[] = xs.map((x, i) => gan.step(x, { labels: ys[i], zD: zD[i], zG: zG[i], yD: yD[i], yG: yG[i] }));
    expectLosses(got, fx.steps, bound().losses);
    expectWeights(name, state(m.G, m.D), fx, 'final', bound().weights);
  });
});

// Live (reference.py run on this machine, as CI does): the same ATen kernels on the same inputs and one
// thread on both sides, so PyTorch's bits. The committed fixtures were made on another CPU, whose kernels
// may round a bf16 product the other way: a loss then moves by a few bf16 steps (2^-8 relative) and Adam
// moves a weight by at most its lr (2e-4) per step, so 5 steps stay within these.
const bound = () => (fixtures.live ? { losses: 0, weights: 0 } : { losses: 2e-2, weights: 2e-3 });
