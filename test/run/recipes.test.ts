/**
 * The recipes through the Trainer (issue 25): a seeded wgan-gp run with an EMA of G, a lazy penalty and
 * DiffAugment (CPU, 192 images) trained 2 epochs straight, and 1 epoch then resumed: the resumed run
 * equals the straight one file for file, the EMA generator's weights and count included; samples and
 * the generator loader use the EMA generator and say so.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MNIST, type ImageDataset } from '../../ts/data/mnist';
import { samplesOf, seededInputs } from '../../ts/gan/sample';
import { fromSpec } from '../../ts/nn/from-spec';
import { resolveRun } from '../../ts/run/resolve';
import { Trainer, type TrainResult } from '../../ts/run/trainer';
import { loadCheckpoint, readTrainerState } from '../../ts/store/checkpoint';
import { loadGeneratorModule, sample, usesEmaGenerator } from '../../ts/store/generator';
import { readRunInfo } from '../../ts/store/run-dir';
import { exportPytorch } from '../../ts/export/pytorch';
import * as safetensors from '../../ts/tensor/safetensors';
import { loadPytorch } from '../../ts/tensor/torch-save';
import * as torch from '../../ts/tensor/torch';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-recipes-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

let mnist: ImageDataset;
const saveDir = path.join(root, 'runs');
const base = {
  preset: 'wgan-gp',
  seed: 11,
  device: 'cpu',
  saveDir,
  saveEvery: 1,
  verbose: 0,
  batchSize: 32,
  ema: { decay: 0.9, start: 1 },
  penalty: { type: 'wgan-gp', weight: 10, every: 2 },
  dSteps: 3,
  augment: 'translation,cutout',
} as const;
let straight: TrainResult;
let resumedDir: string;

beforeAll(async () => {
  mnist = await MNIST();
  const a = await Trainer.create({ ...base, epochs: 2 }, { dataset: mnist, limit: 192 });
  straight = await a.train();
  a.dispose();
  const first = await Trainer.create({ ...base, epochs: 1 }, { dataset: mnist, limit: 192 });
  resumedDir = first.runDir;
  await first.train();
  first.dispose();
  const resumed = new Trainer(await resolveRun({ resume: resumedDir, epochs: 2 }, { dataset: mnist, limit: 192 }));
  await resumed.init();
  await resumed.train();
  resumed.dispose();
}, 600000);

test('config.json keeps the recipes; the run trains on the autograd path', () => {
  const { preset } = readRunInfo(straight.runDir).config;
  expect(preset.step).toMatchObject({ loss: 'wasserstein', penalty: { type: 'wgan-gp', weight: 10, every: 2 }, dSteps: 3, ema: { decay: 0.9, start: 1 } });
  expect(preset.step.augment).toBe('translation,cutout');
  expect(straight).toMatchObject({ epoch: 2, steps: 12, globalStep: 12 });
});

test('report.html says the grids are drawn by the EMA generator', () => {
  const html = fs.readFileSync(path.join(straight.runDir, 'report.html'), 'utf8');
  expect(html).toContain('Drawn by the EMA generator (an exponential moving average of G, decay 0.9)');
});

test('the checkpoint holds the EMA generator and how many G updates it followed', () => {
  const state = readTrainerState(straight.runDir);
  // 6 batches per epoch, G on batch indices 0 and 3: 2 updates per epoch
  expect(state.emaUpdates).toBe(4);
  const ck = loadCheckpoint(straight.runDir);
  expect(Object.keys(ck.generatorEma!).sort()).toEqual(Object.keys(ck.generator).sort());
  // the average is not G: after 4 updates at decay 0.9 it lags behind
  const key = Object.keys(ck.generator).find((k) => k.endsWith('weight'))!;
  expect(ck.generatorEma![key].allclose(ck.generator[key], 1e-3, 1e-5)).toBe(false);
});

test('resumed after epoch 1, the run equals the straight run file for file (EMA included)', () => {
  for (const f of ['generator.safetensors', 'generator_ema.safetensors', 'discriminator.safetensors', 'optimizer_g.safetensors', 'optimizer_d.safetensors']) {
    expect({ f, same: fs.readFileSync(path.join(resumedDir, f)).equals(fs.readFileSync(path.join(straight.runDir, f))) }).toEqual({ f, same: true });
  }
  expect(readTrainerState(resumedDir).emaUpdates).toBe(4);
});

test('sample() and the generator loader use the EMA generator and say so', () => {
  const { preset } = readRunInfo(straight.runDir).config;
  expect(usesEmaGenerator(straight.runDir, preset)).toBe(true);
  const s = sample({ checkpoint: straight.runDir, count: 8, seed: 3 });
  expect(s.ema).toBe(true);
  // the same images as G built from generator_ema.safetensors by hand
  const G = fromSpec(preset.generator);
  G.loadStateDict(safetensors.loadFile(path.join(straight.runDir, 'generator_ema.safetensors')));
  G.eval();
  const { z } = seededInputs(preset, 8, 3);
  const want = samplesOf(
    preset,
    torch.noGrad(() => G.forward(z).toFloat32Array()),
    8,
    3,
  );
  expect(Buffer.from(s.images.buffer).equals(Buffer.from(want.images.buffer))).toBe(true);
  const loaded = loadGeneratorModule(straight.runDir, preset, 'cpu').stateDict();
  const mine = G.stateDict();
  for (const k of Object.keys(mine)) expect({ k, same: loaded[k].allclose(mine[k], 0, 0) }).toEqual({ k, same: true });
});

test('export --pytorch writes the EMA generator', () => {
  const file = path.join(root, 'G.pt');
  exportPytorch(straight.runDir, file);
  const got = loadPytorch(file);
  const ema = safetensors.loadFile(path.join(straight.runDir, 'generator_ema.safetensors'));
  const g = safetensors.loadFile(path.join(straight.runDir, 'generator.safetensors'));
  const key = Object.keys(ema).find((k) => k.endsWith('weight'))!;
  for (const k of Object.keys(ema)) expect({ k, same: got[k].allclose(ema[k], 0, 0) }).toEqual({ k, same: true });
  expect(got[key].allclose(g[key], 0, 0)).toBe(false);
});

test('an abort between G updates (dSteps 3), resumed: the epoch continues exactly, its logged G losses included', async () => {
  const cfg = { ...base, saveDir: path.join(root, 'abort'), epochs: 1 };
  const whole = await Trainer.create(cfg, { dataset: mnist, limit: 192 });
  const w = await whole.train();
  whole.dispose();
  const t = await Trainer.create(cfg, { dataset: mnist, limit: 192 });
  const controller = new AbortController();
  t.on('step', (s) => {
    if (s.globalStep === 1) controller.abort();
  });
  const r = await t.train({ signal: controller.signal });
  t.dispose();
  // stopped after 1 or 2 batches: it resumes on a D-only batch (G updates at batch indices 0 and 3)
  expect([1, 2]).toContain(r.interrupted!.steps);
  const again = await Trainer.create({ resume: r.runDir, epochs: 1 });
  await again.train();
  again.dispose();
  const rows = (dir: string) => fs.readFileSync(path.join(dir, 'losses.csv'), 'utf8').trim().split('\n');
  expect(rows(r.runDir)).toEqual(rows(w.runDir));
  for (const f of ['generator.safetensors', 'generator_ema.safetensors', 'discriminator.safetensors']) {
    expect({ f, same: fs.readFileSync(path.join(r.runDir, f)).equals(fs.readFileSync(path.join(w.runDir, f))) }).toEqual({ f, same: true });
  }
});
