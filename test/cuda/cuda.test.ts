/**
 * CUDA: the fused step on a GPU against the same step on the CPU, the CUDA graph against eager steps,
 * the device-side NaN guard through a graph, and a loaded Generator on the GPU. Skipped where no CUDA device is present (CI); run on
 * a GPU machine by scripts/device/check.sh.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { info } from '../../ts/native/info';
import { loadGenerator } from '../../ts/serve/generator';
import { tinyRun } from '../helpers/lib';
import { buildModels } from '../../ts/gan/build';
import { type Module } from '../../ts/nn/module';
import { Adam } from '../../ts/optim/optimizer';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { GanStep, type GanStepOptions } from '../../ts/gan/gan-step';
import { presets, type PresetName } from '../../ts/gan/presets';

const hasCuda = torch.cuda.isAvailable();
const describeCuda = hasCuda ? describe : describe.skip;

function model(name: PresetName, device: 'cpu' | 'cuda', options: GanStepOptions = {}, seed = 7) {
  torch.manualSeed(seed);
  const p = presets[name];
  // Built on the CPU from one seed (with the preset's init scheme), then moved: both devices start from the same weights.
  const built = buildModels(p);
  const G = built.generator.to(device);
  const D = built.discriminator.to(device);
  const mk = (m: Module) => new Adam(m.parameters(), { lr: p.optimizer.lr, betas: (p.optimizer as { betas?: [number, number] }).betas });
  const optG = mk(G);
  const optD = mk(D);
  return { p, G, D, optG, optD, gan: new GanStep(G, D, optG, optD, p.step, options) };
}

const weights = (m: { G: Module; D: Module }) => [...m.G.parameters(), ...m.D.parameters()].map((t) => t.detach().cpu());
function maxDiff(a: Tensor[], b: Tensor[]): number {
  return Math.max(...a.map((t, i) => t.sub(b[i]).abs().max().item()));
}

// An epoch of uint8 MLP data (10 full batches of 64 and a short one) replayed as a CUDA graph and run eagerly
// from the same seed: per-step losses and final weights agree to 1e-4.
async function graphedAgainstEager(name: PresetName, options: GanStepOptions = {}) {
  const n = 64 * 10 + 32;
  const data = torch.randint(0, 256, [n, 784], { dtype: 'uint8' }).cuda();
  const graphed = model(name, 'cuda', options);
  const eager = model(name, 'cuda', { ...options, cudaGraphs: false });
  const opts = { batchSize: 64, shuffle: true, seed: 1, normalize: graphed.p.normalize, recordSteps: true };
  torch.manualSeed(11);
  const a = await graphed.gan.trainEpoch(data, opts);
  torch.manualSeed(11);
  const b = await eager.gan.trainEpoch(data, opts);
  expect(a.cudaGraph).toBe('replaying (batch 64)');
  expect(b.cudaGraph).toBe('off: disabled (cudaGraphs: false)');
  expect(a.steps).toBe(11);
  const pa = a.perStep!;
  const pb = b.perStep!;
  for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i] - pb[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(pb[i])));
  expect(maxDiff(weights(graphed), weights(eager))).toBeLessThan(1e-4);
  return { graphed, data, opts };
}

describeCuda('CUDA (needs a GPU)', () => {
  test('info lists the device; tensors round-trip', () => {
    const i = info();
    expect(i.cuda.isAvailable).toBe(true);
    expect(i.cuda.devices.length).toBeGreaterThanOrEqual(1);
    expect(i.cuda.devices[0].length).toBeGreaterThan(0);
    const x = torch.rand([64, 784]);
    const y = x.cuda().matmul(x.cuda().t()).cpu();
    expect(y.device).toBe('cpu');
    expect(y.allclose(x.matmul(x.t()), 1e-4, 1e-4)).toBe(true);
  });

  // seed000 has no dropout: CPU and CUDA draw dropout masks from different generators.
  test('the fused step on CUDA computes what it computes on the CPU (same weights, batches, noise)', () => {
    const gpu = model('seed000', 'cuda');
    const cpu = model('seed000', 'cpu', { capturable: true }); // the same PyTorch fused Adam kernel, on the CPU
    expect(gpu.gan.capturable).toBe(true);
    for (let i = 0; i < 5; i++) {
      const x = torch.rand([64, 784]).mul(2).sub(1);
      const zD = torch.rand([64, 128]).mul(2).sub(1);
      const zG = torch.rand([64, 128]).mul(2).sub(1);
      const a = cpu.gan.step(x, { zD, zG });
      const b = gpu.gan.step(x.cuda(), { zD: zD.cuda(), zG: zG.cuda() });
      expect(b.dLoss).toBeCloseTo(a.dLoss, 4);
      expect(b.gLoss).toBeCloseTo(a.gLoss, 4);
      expect(b.dReal).toBeCloseTo(a.dReal, 4);
    }
    expect(maxDiff(weights(gpu), weights(cpu))).toBeLessThan(1e-4);
  });

  test.each(['dcgan', 'cgan'] as PresetName[])('%s: the conv step on CUDA (cuDNN) computes what it computes on the CPU, labels included', (name) => {
    const gpu = model(name, 'cuda');
    const cpu = model(name, 'cpu', { capturable: true });
    const cond = !!gpu.p.step.conditioning;
    for (let i = 0; i < 4; i++) {
      const x = torch.rand([32, 1, 28, 28]).mul(2).sub(1);
      const zD = torch.randn([32, 100, 1, 1]);
      const labels = cond ? torch.randint(0, 10, [32]) : undefined;
      const yD = cond ? torch.randint(0, 10, [32]) : undefined;
      const a = cpu.gan.step(x, { labels, zD, yD });
      const b = gpu.gan.step(x.cuda(), { labels: labels?.cuda(), zD: zD.cuda(), yD: yD?.cuda() });
      expect(b.dLoss).toBeCloseTo(a.dLoss, 3);
      expect(b.gLoss).toBeCloseTo(a.gLoss, 3);
    }
    expect(maxDiff(weights(gpu), weights(cpu))).toBeLessThan(1e-3);
    // sample grids: G on CUDA draws what it draws on the CPU
    const z = torch.randn([10, 100, 1, 1]);
    const y = cond ? torch.arange(0, 10) : undefined;
    expect(gpu.gan.generate(z.cuda(), y?.cuda()).cpu().sub(cpu.gan.generate(z, y)).abs().max().item()).toBeLessThan(1e-3);
  });

  test.each(['dcgan', 'cgan'] as PresetName[])('%s: an epoch replayed as a CUDA graph (conv layers, drawn labels) equals eager steps', async (name) => {
    const n = 64 * 6 + 16;
    const data = torch.randint(0, 256, [n, 1, 28, 28], { dtype: 'uint8' }).cuda();
    const graphed = model(name, 'cuda');
    const eager = model(name, 'cuda', { cudaGraphs: false });
    const labels = graphed.p.step.conditioning ? torch.randint(0, 10, [n]).cuda() : undefined;
    const opts = { batchSize: 64, labels, shuffle: true, seed: 1, normalize: graphed.p.normalize, recordSteps: true };
    torch.manualSeed(11);
    const a = await graphed.gan.trainEpoch(data, opts);
    torch.manualSeed(11);
    const b = await eager.gan.trainEpoch(data, opts);
    expect(a.cudaGraph).toBe('replaying (batch 64)');
    const pa = a.perStep!;
    const pb = b.perStep!;
    for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i] - pb[i])).toBeLessThan(1e-3 * Math.max(1, Math.abs(pb[i])));
    expect(maxDiff(weights(graphed), weights(eager))).toBeLessThan(1e-3);
  });

  test.each(['vanilla', 'udacity', 'ganist'] as PresetName[])(
    '%s: an epoch replayed as a CUDA graph equals eager steps; the short last batch runs eagerly',
    async (name) => {
      const { graphed, data, opts } = await graphedAgainstEager(name);
      // The graph survives the epoch boundary and keeps counting Adam's steps on the device.
      await graphed.gan.trainEpoch(data, opts);
      expect(graphed.gan.cudaGraph).toBe('replaying (batch 64)');
      expect(graphed.optD.stateDict().state[0].step).toBe(22);
    },
  );

  // The MLP fast path on CUDA (opt-in, fastPath: true): ganist has no dropout, whose masks the two paths
  // draw differently on CUDA (bernoulli_ against CUDA dropout's fused kernel).
  test('MLP fast path on CUDA (fastPath: true): equals the autograd path eagerly, and replays as a CUDA graph', async () => {
    expect(model('ganist', 'cuda').gan.path).toBe('autograd: on cuda:0 the fast path is opt-in (fastPath: true) until it has been verified on a GPU');
    const fast = model('ganist', 'cuda', { fastPath: true, cudaGraphs: false });
    const slow = model('ganist', 'cuda', { cudaGraphs: false });
    expect(fast.gan.path).toBe('fast');
    for (let i = 0; i < 4; i++) {
      const x = torch.rand([64, 784]).cuda();
      const zD = torch.randn([64, 10]).cuda();
      const zG = torch.randn([64, 10]).cuda();
      const a = slow.gan.step(x, { zD, zG });
      const b = fast.gan.step(x, { zD, zG });
      expect(Math.abs(b.dLoss - a.dLoss) / a.dLoss).toBeLessThan(1e-4);
      expect(Math.abs(b.gLoss - a.gLoss) / a.gLoss).toBeLessThan(1e-4);
    }
    expect(maxDiff(weights(fast), weights(slow))).toBeLessThan(1e-4);
    for (const name of ['ganist', 'vanilla'] as PresetName[]) {
      const { graphed } = await graphedAgainstEager(name, { fastPath: true });
      expect(graphed.gan.path).toBe('fast');
    }
  });

  test('loading optimizer state drops the graph; it is captured again after a warm-up', () => {
    const m = model('vanilla', 'cuda');
    const x = torch.rand([32, 784]).cuda();
    for (let i = 0; i < 5; i++) m.gan.step(x);
    expect(m.gan.cudaGraph).toBe('replaying (batch 32)');
    m.optD.loadStateDict(m.optD.stateDict());
    m.gan.step(x);
    expect(m.gan.cudaGraph).toBe('warming up');
    for (let i = 0; i < 4; i++) m.gan.step(x);
    expect(m.gan.cudaGraph).toBe('replaying (batch 32)');
    expect(m.optD.stateDict().state[0].step).toBe(10);
  });

  // A scheduler changes lr every few steps: the captured updates read it from a device tensor, so a change
  // is a fill of that tensor before the next replay, never a recapture (which would show as 'warming up').
  test('a new learning rate between replays keeps the graph (no recapture); the steps equal eager ones under the same schedule', () => {
    const graphed = model('vanilla', 'cuda');
    const eager = model('vanilla', 'cuda', { cudaGraphs: false });
    const xs = Array.from({ length: 10 }, () => torch.rand([32, 784]).mul(2).sub(1).cuda());
    const lrs = [2e-4, 2e-4, 2e-4, 2e-4, 1e-3, 5e-5, 5e-5, 5e-4, 1e-4, 3e-4];
    const run = (m: ReturnType<typeof model>, graphs: boolean) => {
      torch.manualSeed(21);
      return xs.map((x, i) => {
        m.optG.paramGroups[0].lr = lrs[i];
        m.optD.paramGroups[0].lr = lrs[i];
        const r = m.gan.step(x);
        // Captured at step 4, after 3 warm-up steps; kept through every lr change after it.
        if (graphs) expect({ step: i + 1, status: m.gan.cudaGraph }).toEqual({ step: i + 1, status: i < 3 ? 'warming up' : 'replaying (batch 32)' });
        return r;
      });
    };
    const a = run(graphed, true);
    const b = run(eager, false);
    for (let i = 0; i < a.length; i++) {
      expect(Math.abs(a[i].dLoss - b[i].dLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(b[i].dLoss)));
      expect(Math.abs(a[i].gLoss - b[i].gLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(b[i].gLoss)));
    }
    expect(maxDiff(weights(graphed), weights(eager))).toBeLessThan(1e-4);
  });

  test('the recipes on CUDA (sngan: spectral norm, hinge; R1, dSteps, EMA) compute what they compute on the CPU; DiffAugment and WGAN-GP run eager', () => {
    // no draws inside the step (R1, not WGAN-GP's interpolates; no augmentation): the devices' generators differ
    const step = { ...presets.sngan.step, penalty: { type: 'r1' as const, weight: 1, every: 2 }, dSteps: 2, ema: { decay: 0.9 } };
    const make = (device: 'cpu' | 'cuda') => {
      torch.manualSeed(3);
      const built = buildModels(presets.sngan);
      const G = built.generator.to(device);
      const D = built.discriminator.to(device);
      const [optG, optD] = [new Adam(G.parameters(), { lr: 2e-4 }), new Adam(D.parameters(), { lr: 2e-4 })];
      return { G, D, gan: new GanStep(G, D, optG, optD, step, { capturable: true }) };
    };
    const [cpu, gpu] = [make('cpu'), make('cuda')];
    expect(gpu.gan.cudaGraph).toMatch(/^off: the step spec's recipes/);
    for (let i = 0; i < 4; i++) {
      const x = torch.rand([16, 1, 28, 28]).mul(2).sub(1);
      const zD = torch.randn([16, 128]);
      const zG = torch.randn([16, 128]);
      const a = cpu.gan.step(x, { zD, zG });
      const b = gpu.gan.step(x.cuda(), { zD: zD.cuda(), zG: zG.cuda() });
      expect(b.dLoss).toBeCloseTo(a.dLoss, 3);
      expect(b.gLoss).toBeCloseTo(a.gLoss, 3);
    }
    expect(maxDiff(weights(gpu), weights(cpu))).toBeLessThan(1e-3);
    const ema = (m: typeof cpu) => m.gan.emaGenerator!.parameters().map((t) => t.detach().cpu());
    expect(maxDiff(ema(gpu), ema(cpu))).toBeLessThan(1e-3);
    // WGAN-GP with DiffAugment (their draws from the GPU's generator): finite, eager
    const w = model('wgan-gp', 'cuda');
    const aug = new GanStep(w.G, w.D, w.optG, w.optD, { ...w.p.step, augment: 'color,translation,cutout' });
    for (let i = 0; i < 3; i++) {
      const r = aug.step(torch.rand([16, 1, 28, 28]).mul(2).sub(1).cuda());
      expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
    }
    expect(aug.cudaGraph).toMatch(/^off: the step spec's recipes/);
  });

  test('cuda.synchronize(device) waits on the device named, as torch.cuda.synchronize', () => {
    const n = torch.cuda.deviceCount();
    const last = `cuda:${n - 1}` as const;
    const x = torch.rand([512, 512], { device: last });
    const y = x.matmul(x);
    torch.cuda.synchronize(last);
    torch.cuda.synchronize(n - 1);
    torch.cuda.synchronize('cuda');
    torch.cuda.synchronize();
    expect(y.sum().item()).toBeCloseTo(x.cpu().matmul(x.cpu()).sum().item(), -1);
    expect(() => torch.cuda.synchronize('cpu')).toThrow(/expected a CUDA device/);
    expect(() => torch.cuda.synchronize(n)).toThrow(new RegExp(`no CUDA device cuda:${n} \\(this machine has ${n}`));
  });

  // The epoch's draws (noise, labels, dropout) come from cuda:0's default generator and are replayed from
  // its offsets; a JS-thread draw from it mid-epoch (or mid-capture) would move them. Refused instead.
  test('during a graphed CUDA epoch, JS-thread draws from its device generator are refused (CPU draws are not); the epoch equals eager steps', async () => {
    const refused: string[] = [];
    let cpuDraws = 0;
    const probe = () => {
      for (const f of [
        () => torch.randn([4], { device: 'cuda' }),
        () => torch.manualSeed(1),
        () => torch.getRngState('cuda'),
        () => graphedModel.gan.noise(2),
      ]) {
        try {
          f();
        } catch (e) {
          refused.push((e as Error).message);
        }
      }
      torch.rand([4]).dispose(); // the CPU generator is not the epoch's
      cpuDraws++;
    };
    const graphedModel = model('vanilla', 'cuda');
    const eagerModel = model('vanilla', 'cuda', { cudaGraphs: false });
    const n = 64 * 10;
    const data = torch.randint(0, 256, [n, 784], { dtype: 'uint8' }).cuda();
    const opts = { batchSize: 64, shuffle: true, seed: 1, normalize: graphedModel.p.normalize, recordSteps: true, progressEvery: 1 };
    torch.manualSeed(11);
    const epoch = graphedModel.gan.trainEpoch(data, { ...opts, onProgress: probe });
    probe();
    const a = await epoch;
    torch.manualSeed(11);
    const b = await eagerModel.gan.trainEpoch(data, opts);
    expect(a.cudaGraph).toBe('replaying (batch 64)');
    expect(cpuDraws).toBeGreaterThan(1);
    expect(refused.length).toBe(4 * cpuDraws);
    for (const m of refused) expect(m).toMatch(/: the default random generator of (cuda:0|the current CUDA device) is in use by a running trainEpoch/);
    const pa = a.perStep!;
    const pb = b.perStep!;
    for (let i = 0; i < pa.length; i++) expect(Math.abs(pa[i] - pb[i])).toBeLessThan(1e-4 * Math.max(1, Math.abs(pb[i])));
  });

  test('a NaN batch inside a graphed epoch: the error names the step, weights are those of the step before', async () => {
    const data = torch
      .rand([64 * 12, 784])
      .mul(2)
      .sub(1);
    data.narrow(0, 64 * 8, 64).fill_(NaN); // batch 9 of 12, after the graph was captured
    const a = model('udacity', 'cuda'); // logits + BCEWithLogits: NaN flows into the loss
    torch.manualSeed(3);
    await expect(a.gan.trainEpoch(data.cuda(), { batchSize: 64, shuffle: false, progressEvery: 4 })).rejects.toThrow(
      /at step 9 of 12; training stopped: that update and the 3 after it were skipped, so the weights are those of step 8/,
    );
    const b = model('udacity', 'cuda');
    torch.manualSeed(3);
    await b.gan.trainEpoch(data.narrow(0, 0, 64 * 8).cuda(), { batchSize: 64, shuffle: false });
    expect(maxDiff(weights(a), weights(b))).toBeLessThan(1e-6);
    expect(a.optD.stateDict().state[0].step).toBe(8);
  });
});

// A loaded Generator on the GPU (issue 27): the run's G moved to CUDA samples what the CPU one samples
// from the same seeds (the noise is drawn on the CPU), to float rounding, in coalesced batches.
describeCuda('loadGenerator on CUDA', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-cuda-serve-'));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test.each(['cgan', 'vanilla'])('%s: CUDA samples equal the CPU ones to 1e-4, batched calls included', async (preset) => {
    const run = tinyRun(preset, path.join(root, preset));
    const onCpu = await loadGenerator(run, { device: 'cpu' });
    const onGpu = await loadGenerator(run, { device: 'cuda' });
    try {
      const calls = [
        { count: 16, seed: 1 },
        { count: 3, seed: 2 },
        { count: 64, seed: 3, truncation: 1.5 },
      ];
      const [a, b] = await Promise.all([Promise.all(calls.map((c) => onCpu.sample(c))), Promise.all(calls.map((c) => onGpu.sample(c)))]);
      for (const [i, x] of a.entries()) {
        const y = b[i]!;
        expect({ shape: y.shape, labels: y.labels }).toEqual({ shape: x.shape, labels: x.labels });
        let worst = 0;
        for (let k = 0; k < x.images.length; k++) worst = Math.max(worst, Math.abs(x.images[k]! - y.images[k]!));
        expect(worst).toBeLessThan(1e-4);
      }
    } finally {
      await onCpu.close();
      await onGpu.close();
    }
  });
});
