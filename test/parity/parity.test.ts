/**
 * Parity with PyTorch for the five seed presets: the facade's imperative loop and the fused native
 * step replay test/parity/reference.py's protocol (same init seed, noise, MNIST batches, step seed)
 * and must reproduce its losses (1e-5 relative) and weights (1e-5 absolute; ganist 1e-4, see
 * test/parity/README.md). With Python's torch present, fixtures are regenerated live (full weights
 * compared); otherwise the committed compact fixtures (losses, sums, 64 samples per tensor) are used.
 * Dropout presets compare exactly too: both sides draw dropout masks from the same global generator
 * in the same operation order (the protocol's canonical step), so no mask feeding is needed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { GanStep } from '../../ts/gan/gan-step';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { presets } from '../../ts/gan/presets';
import { batches, build, cleanup, drawNoise, expectLosses, expectWeights, fixtures, load, prepare, rawBatches, realLabels, STEPS, state } from './harness';

const NAMES = ['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla', 'dcgan', 'cgan'] as const;
/** A preset with a learning rate set on both optimizers before each step, as a scheduler would (also read by regenerate.sh). */
const lrVariant = JSON.parse(fs.readFileSync(path.join(__dirname, 'lr-schedule.json'), 'utf8')) as {
  name: string;
  base: (typeof NAMES)[number];
  lrSchedule: number[];
};
const LR_SCHEDULE = lrVariant.lrSchedule;
const LR_PRESET = lrVariant.name;

const seedPresets = Object.fromEntries(NAMES.map((n) => [n, presets[n]]));
beforeAll(() => prepare({ ...seedPresets, [LR_PRESET]: { ...presets[lrVariant.base], lrSchedule: LR_SCHEDULE } }), 180000);
afterAll(cleanup);

describe.each(NAMES)('parity with PyTorch: %s', (name) => {
  const p = presets[name];
  // ganist: BatchNorm leaves many G gradients near zero, so Adam's sign-like first steps amplify
  // rounding to ~lr per step even between two PyTorch thread counts (test/parity/README.md).
  const atol = name === 'ganist' || name === 'dcgan' || name === 'cgan' ? 1e-4 : 1e-5;

  test('initial weights and noise equal PyTorch’s from the same seed', () => {
    const fx = load(name);
    const { G, D } = build(p);
    expectWeights(name, state(G, D), fx, 'init', 1e-7);
    const { zD, zG, yD, yG } = drawNoise(p);
    for (const [i, z] of zD.entries()) expect(z.sum().item()).toBeCloseTo(fx.noise.zD.sums[i], 2);
    if (fx.noise.zG) for (const [i, z] of zG.entries()) expect(z!.sum().item()).toBeCloseTo(fx.noise.zG!.sums[i], 2);
    for (const [i, b] of batches(p).entries()) expect(b.double().sum().item()).toBeCloseTo(fx.data.batchSums[i], 1);
    // fake labels drawn bit for bit as torch.randint(0, classes, (B,)), real labels from the same file
    const ints = (t: Tensor | undefined) => Array.from(t!.toTypedArray() as BigInt64Array, Number);
    if (p.step.conditioning) {
      expect(yD.map(ints)).toEqual(fx.noise.yD);
      if (fx.noise.yG) expect(yG.map(ints)).toEqual(fx.noise.yG);
      expect(realLabels(p).map((y) => ints(y).reduce((a, b) => a + b, 0))).toEqual(fx.data.labelSums);
    }
  });

  test('facade imperative loop reproduces PyTorch’s losses and weights', () => {
    const fx = load(name);
    const m = build(p);
    const { zD, zG, yD, yG } = drawNoise(p);
    const xs = batches(p);
    const ys = realLabels(p);
    torch.manualSeed(99);
    const got = xs.map((x, i) => imperativeStep(m.G, m.D, m.optG, m.optD, p.step, x, { labels: ys[i], zD: zD[i], zG: zG[i], yD: yD[i], yG: yG[i] }));
    expectLosses(got, fx.steps);
    expectWeights(name, state(m.G, m.D), fx, 'final', atol);
  });

  // fused Adam is the Trainer's: one native pass per parameter, equal to PyTorch's update up to rounding.
  // capturable is CUDA's default: PyTorch's own fused Adam/SGD kernels with step counts on the device.
  test.each([
    ['single-tensor', false, false],
    ['fused', true, false],
    ['capturable (PyTorch fused kernels)', false, true],
  ])('fused native step with %s optimizer reproduces PyTorch’s losses and weights', (_, fusedAdam, capturable) => {
    const fx = load(name);
    const m = build(p, fusedAdam as boolean);
    const { zD, zG, yD, yG } = drawNoise(p);
    const xs = batches(p);
    const ys = realLabels(p);
    const gan = new GanStep(m.G, m.D, m.optG, m.optD, p.step, { capturable: capturable as boolean });
    expect(gan.capturable).toBe(capturable);
    expect(gan.cudaGraph).toBe('off: not on a CUDA device');
    // Every seed preset runs on the fast path (explicit forward/backward).
    const conv = name === 'dcgan' || name === 'cgan';
    expect(gan.path).toBe('fast');
    torch.manualSeed(99);
    const got = xs.map((x, i) => gan.step(x, { labels: ys[i], zD: zD[i], zG: zG[i], yD: yD[i], yG: yG[i] }));
    // The conv presets' fast path computes in channels-last memory format (oneDNN's fastest here) and runs
    // D on the real and fake batches as one batch: the same arithmetic summed in another order. PyTorch
    // itself drifts as far between the two memory formats: its same 5 dcgan steps in NCHW and channels-last
    // differ by 1.9e-4 relative in the losses (2.7e-4 with fused Adam) and 9.5e-4 in the weights on an AMD
    // EPYC (test/parity/format_drift.py), through BatchNorm2d's near-zero gradients and Adam's sign-like
    // first steps. So the conv presets get 5e-4 and 2e-3. The MLP presets: fused Adam rounds ~1 ulp per
    // update away from PyTorch's single-tensor Adam, within 1e-5.
    expectLosses(got, fx.steps, conv ? 5e-4 : 1e-5);
    expectWeights(name, state(m.G, m.D), fx, 'final', conv ? 2e-3 : atol);
  });

  test.each([false, true])('trainEpoch without shuffle equals the same sequence of step() calls (capturable: %s)', async (capturable) => {
    const a = build(p);
    drawNoise(p);
    const ganA = new GanStep(a.G, a.D, a.optG, a.optD, p.step, { capturable });
    const ys = realLabels(p);
    torch.manualSeed(99);
    const steps = batches(p).map((x, i) => ganA.step(x, { labels: ys[i] }));

    const b = build(p);
    drawNoise(p);
    const ganB = new GanStep(b.G, b.D, b.optG, b.optD, p.step, { capturable });
    torch.manualSeed(99);
    const labels = p.step.conditioning ? torch.cat(ys as Tensor[]) : undefined;
    const r = await ganB.trainEpoch(rawBatches(p), { batchSize: p.batchSize, labels, shuffle: false, normalize: p.normalize, recordSteps: true });
    expect(r.steps).toBe(STEPS);
    expect(r.images).toBe(STEPS * p.batchSize);
    const per = r.perStep!;
    steps.forEach((s, i) => {
      expect(per[i * 4]).toBe(Math.fround(s.dLoss));
      expect(per[i * 4 + 1]).toBe(Math.fround(s.gLoss));
    });
    const wa = state(a.G, a.D);
    const wb = state(b.G, b.D);
    for (const k of Object.keys(wa)) expect(wa[k].allclose(wb[k], 0, 0)).toBe(true);
  });
});

// A learning rate changed between steps (a scheduler) reaches every update path: the capturable kernels
// read it from a device tensor (the CUDA graph's input, so a change is a fill, not a recapture; see
// test/cuda), the others from the number.
describe(`parity with PyTorch under an lr schedule (${LR_SCHEDULE.join(', ')}): ${lrVariant.base}`, () => {
  const p = presets[lrVariant.base];

  test('the schedule changes what PyTorch computes (the fixture is not the plain preset’s)', () => {
    const fx = load(LR_PRESET);
    const plain = load(lrVariant.base);
    expect(fx.steps[0].dLoss).toBe(plain.steps[0].dLoss); // the first step's lr is vanilla's own
    expect(Math.abs(fx.steps[4].gLoss - plain.steps[4].gLoss) / Math.abs(plain.steps[4].gLoss)).toBeGreaterThan(1e-3);
  });

  test.each([
    ['single-tensor', false, false],
    ['fused', true, false],
    ['capturable (PyTorch fused kernels, lr as a tensor)', false, true],
  ])('fused native step with %s optimizer reproduces PyTorch’s losses and weights', (_, fusedAdam, capturable) => {
    const fx = load(LR_PRESET);
    const m = build(p, fusedAdam as boolean);
    const { zD, zG } = drawNoise(p);
    const xs = batches(p);
    const gan = new GanStep(m.G, m.D, m.optG, m.optD, p.step, { capturable: capturable as boolean });
    torch.manualSeed(99);
    const got = xs.map((x, i) => {
      m.optG.paramGroups[0].lr = LR_SCHEDULE[i];
      m.optD.paramGroups[0].lr = LR_SCHEDULE[i];
      return gan.step(x, { zD: zD[i], zG: zG[i] });
    });
    expectLosses(got, fx.steps);
    expectWeights(LR_PRESET, state(m.G, m.D), fx, 'final', 1e-5);
  });
});

test('fixtures in use', () => {
  // Documents the mode in the test log; both modes assert the same things.
  expect(fs.existsSync(path.join(fixtures.dir, 'vanilla.json'))).toBe(true);
  if (!fixtures.live) console.warn('parity: Python torch not found, compared against committed fixtures');
});
