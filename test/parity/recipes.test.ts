/**
 * Parity with PyTorch for the recipes of the fused step (issue 25): each variant of recipes.json is a seed
 * preset with recipe fields in its step spec (losses, penalties, lazy penalties, dSteps, EMA, DiffAugment,
 * conditional), replayed by test/parity/reference.py's protocol (README.md, "Recipes"). The fused native
 * step and, where the spec allows, the facade's imperativeStep must reproduce PyTorch's losses and weights
 * (the EMA generator's too) over 5 steps, to the seed presets' bounds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as torch from '../../ts/tensor/torch';
import { GanStep, type StepResult } from '../../ts/gan/gan-step';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { type Preset, presets } from '../../ts/gan/presets';
import { GanStepSpecSchema } from '../../ts/gan/step-spec';
import { batches, build, cleanup, drawNoise, expectLosses, expectWeights, load, prepare, rawBatches, realLabels, STEPS, state } from './harness';

interface Variant {
  name: string;
  base: keyof typeof presets;
  step: Record<string, unknown>;
}
const VARIANTS = JSON.parse(fs.readFileSync(path.join(__dirname, 'recipes.json'), 'utf8')) as Variant[];
const variant = (v: Variant): Preset => ({ ...presets[v.base], step: GanStepSpecSchema.parse({ ...presets[v.base].step, ...v.step }) as Preset['step'] });
const RECIPES = Object.fromEntries(VARIANTS.map((v) => [v.name, variant(v)]));

beforeAll(() => prepare(RECIPES), 300000);
afterAll(cleanup);

describe.each(VARIANTS.map((v) => v.name))('recipe parity with PyTorch: %s', (name) => {
  const p = RECIPES[name];
  const conv = p.discriminator.type === 'Sequential' && p.discriminator.children[0].type === 'Conv2d';
  // the seed presets' bounds (parity.test.ts): BatchNorm'd conv models 1e-4, the MLPs 1e-5
  const atol = conv ? 1e-4 : 1e-5;

  test('fused native step reproduces PyTorch’s losses and weights', () => {
    const fx = load(name);
    const m = build(p);
    const { zD, zG, yD, yG } = drawNoise(p);
    const xs = batches(p);
    const ys = realLabels(p);
    const gan = new GanStep(m.G, m.D, m.optG, m.optD, p.step);
    // every recipe runs on the autograd path, which says why
    expect(gan.path).toMatch(/^autograd: /);
    expectWeights(name, state(m.G, m.D), fx, 'init', 1e-7);
    torch.manualSeed(99);
    const got: StepResult[] = xs.map((x, i) => gan.step(x, { labels: ys[i], zD: zD[i], zG: zG[i], yD: yD[i], yG: yG[i] }));
    expectLosses(got, fx.steps, conv ? 1e-4 : 1e-5);
    expectWeights(name, state(m.G, m.D, gan.emaGenerator), fx, 'final', atol);
    if (p.step.ema) expect(gan.emaUpdates).toBe(Math.ceil(STEPS / (p.step.dSteps ?? 1)));
  });

  test('trainEpoch without shuffle equals the same sequence of step() calls', async () => {
    const a = build(p);
    drawNoise(p);
    const ganA = new GanStep(a.G, a.D, a.optG, a.optD, p.step);
    const ys = realLabels(p);
    torch.manualSeed(99);
    const steps = batches(p).map((x, i) => ganA.step(x, { labels: ys[i] }));
    const b = build(p);
    drawNoise(p);
    const ganB = new GanStep(b.G, b.D, b.optG, b.optD, p.step);
    torch.manualSeed(99);
    const labels = p.step.conditioning ? torch.cat(ys as never) : undefined;
    const r = await ganB.trainEpoch(rawBatches(p), { batchSize: p.batchSize, labels, shuffle: false, normalize: p.normalize, recordSteps: true });
    expect(r.steps).toBe(STEPS);
    steps.forEach((s, i) => {
      expect(r.perStep![i * 4]).toBe(Math.fround(s.dLoss));
      expect(r.perStep![i * 4 + 1]).toBe(Math.fround(s.gLoss));
    });
    const wa = state(a.G, a.D, ganA.emaGenerator);
    const wb = state(b.G, b.D, ganB.emaGenerator);
    for (const k of Object.keys(wa)) expect(wa[k].allclose(wb[k], 0, 0)).toBe(true);
  });

  if (!p.step.ema)
    test('facade imperative loop reproduces PyTorch’s losses and weights', () => {
      const fx = load(name);
      const m = build(p);
      const { zD, zG, yD, yG } = drawNoise(p);
      const xs = batches(p);
      const ys = realLabels(p);
      torch.manualSeed(99);
      let last = Number.NaN;
      const got = xs.map((x, i) => {
        const r = imperativeStep(m.G, m.D, m.optG, m.optD, p.step, x, { labels: ys[i], zD: zD[i], zG: zG[i], yD: yD[i], yG: yG[i], batchIndex: i });
        // a D-only step (dSteps > 1) reports G's last loss, as the fused step and the reference do
        if (Number.isNaN(r.gLoss)) return { ...r, gLoss: last };
        last = r.gLoss;
        return r;
      });
      expectLosses(got, fx.steps, conv ? 1e-4 : 1e-5);
      expectWeights(name, state(m.G, m.D), fx, 'final', atol);
    });
});
