import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { findPython, runPython } from '../helpers/python';
import { MNIST, type ImageDataset } from '../../ts/data/mnist';
import { info } from '../../ts/native/info';
import * as safetensors from '../../ts/tensor/safetensors';
import * as torch from '../../ts/tensor/torch';
import { nativeCudaReason } from '../helpers/cuda';
import { ConfigError, resolveConfig, resolveConfigAndDevice, resolveDevice } from '../../ts/config/config';
import { cudaEnv } from '../../ts/config/device';
import { resolveGiven, resolveRun } from '../../ts/run/resolve';
import { checkpointFs, loadCheckpoint } from '../../ts/store/checkpoint';
import { saveSamples } from '../../ts/gan/sample';
import { sample } from '../../ts/store/generator';
import {
  createRunDir,
  shuffleSeedFor,
  Trainer,
  type TrainerCheckpointEvent,
  type TrainerDeviceEvent,
  type TrainerEpochEvent,
  type TrainerStepEvent,
  type TrainResult,
} from '../../ts/run/trainer';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-trainer-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const pkgVersion = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
const pyTorch = findPython(['torch']);
const pyTb = findPython(['tensorboard']);

let mnist: ImageDataset;
beforeAll(async () => {
  mnist = await MNIST();
});

interface Recorded {
  steps: TrainerStepEvent[];
  epochs: TrainerEpochEvent[];
  checkpoints: TrainerCheckpointEvent[];
  warnings: Error[];
  devices: TrainerDeviceEvent[];
}

function record(t: Trainer): Recorded {
  const r: Recorded = { steps: [], epochs: [], checkpoints: [], warnings: [], devices: [] };
  t.on('device', (e) => r.devices.push(e));
  t.on('step', (e) => r.steps.push(e));
  t.on('epoch', (e) => r.epochs.push(e));
  t.on('checkpoint', (e) => r.checkpoints.push(e));
  t.on('warning', (e) => r.warnings.push(e));
  return r;
}

/** Bitwise equality of two float arrays (fast, unlike toEqual on large arrays). */
const sameBits = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const losses = (e: TrainerEpochEvent) => [e.dLoss, e.gLoss, e.dReal, e.dFake];
const hasCuda = torch.cuda.isAvailable();

const csvRows = (dir: string) => fs.readFileSync(path.join(dir, 'losses.csv'), 'utf8').trim().split('\n').slice(1);

describe('Trainer: a seeded vanilla run, a 1-epoch run and its resumption (512 images, CPU)', () => {
  const saveDir = path.join(root, 'runs');
  const base = { preset: 'vanilla', seed: 7, device: 'cpu', saveDir, saveEvery: 1, verbose: 0 } as const;
  let straight: Trainer;
  let straightEv: Recorded;
  let straightResult: TrainResult;
  let oneEpochDir: string;
  let resumedEv: Recorded;
  let resumedResult: TrainResult;

  beforeAll(async () => {
    // the deprecated form, new Trainer(config) + init(), which resolves the config itself: the resumed
    // run below (resolveRun, then new Trainer(run)) must match it exactly
    straight = new Trainer({ ...base, epochs: 2 }, { dataset: mnist, limit: 512 });
    expect(() => straight.config).toThrow(/await trainer\.init\(\) first/);
    straightEv = record(straight);
    await straight.init();
    straightResult = await straight.train();

    const first = await Trainer.create({ ...base, epochs: 1 }, { dataset: mnist, limit: 512 });
    oneEpochDir = first.runDir;
    await first.train();
    first.dispose();

    const resumed = new Trainer(await resolveRun({ resume: oneEpochDir, epochs: 2 }, { dataset: mnist, limit: 512 })); // device left to 'auto'
    resumedEv = record(resumed);
    await resumed.init();
    resumedResult = await resumed.train();
    resumed.dispose();
  });
  afterAll(() => straight?.dispose());

  it('numbers run folders run-1, run-2 and resumes into the same folder', () => {
    expect(straightResult.runDir).toBe(path.join(saveDir, 'run-1'));
    expect(oneEpochDir).toBe(path.join(saveDir, 'run-2'));
    expect(resumedResult.runDir).toBe(oneEpochDir);
    expect(fs.readdirSync(saveDir).sort()).toEqual(['run-1', 'run-2']);
    // the next one is run-3, also when a stray folder is in the way
    fs.mkdirSync(path.join(saveDir, 'run-10'));
    expect(createRunDir(saveDir)).toBe(path.join(saveDir, 'run-11'));
    fs.rmSync(path.join(saveDir, 'run-10'), { recursive: true });
    fs.rmSync(path.join(saveDir, 'run-11'), { recursive: true });
  });

  it('writes config.json with the resolved config, versions, device, seed and start time', () => {
    const cfg = JSON.parse(fs.readFileSync(path.join(straight.runDir, 'config.json'), 'utf8'));
    expect(cfg.format).toBe('libtorch-gan-run/1');
    expect(cfg.run).toBe('run-1');
    expect(cfg.packageVersion).toBe(pkgVersion);
    expect(cfg.libtorchVersion).toBe(info().libtorch.version);
    expect(cfg.device).toBe('cpu');
    expect(cfg.seed).toBe(7);
    expect(Math.abs(Date.parse(cfg.startTime) - Date.now())).toBeLessThan(10 * 60 * 1000);
    expect(cfg.dataset).toMatchObject({ name: 'MNIST', images: 512 });
    expect(cfg.config.preset.name).toBe('vanilla');
    expect(cfg.config.preset.epochs).toBe(2);
    expect(cfg.config.preset.batchSize).toBe(100);
    expect(cfg.config.preset.generator.children[0]).toEqual({ type: 'Linear', inFeatures: 100, outFeatures: 256 });
    expect(cfg.config).toMatchObject({ device: 'cpu', seed: 7, saveEvery: 1, sampleEvery: 1, saveDir });
    expect(cfg.runConfig).toMatchObject({ preset: 'vanilla', seed: 7, epochs: 2 });
    expect(cfg.resumes).toEqual([]);
    const resumed = JSON.parse(fs.readFileSync(path.join(oneEpochDir, 'config.json'), 'utf8'));
    expect(resumed.resumes).toHaveLength(1);
    expect(resumed.resumes[0].fromEpoch).toBe(1);
    expect(resumed.config.preset.epochs).toBe(2);
  });

  it('TrainResult, the device event and report.html name the device asked for and the CUDA graph state', () => {
    expect(straightResult.device).toEqual({ name: 'cpu' });
    expect(straightResult.cudaGraph).toBe('off: not on a CUDA device');
    expect(straight.deviceInfo).toEqual({ name: 'cpu' });
    expect(straightEv.devices).toEqual([{ name: 'cpu', cudaGraph: 'off: not on a CUDA device' }]);
    expect(fs.readFileSync(path.join(straight.runDir, 'report.html'), 'utf8')).toContain(
      '<p>Trained on <code>cpu</code>.</p>\n<p>CUDA graph: off: not on a CUDA device</p>',
    );
  });

  (hasCuda ? it.skip : it)('device auto without a usable GPU trains on the CPU and says why (event, TrainResult, report.html)', () => {
    const fallback = `CUDA is not available: ${nativeCudaReason()}`;
    expect(resumedResult.device).toEqual({ name: 'cpu', fallback });
    expect(resumedResult.cudaGraph).toBe('off: not on a CUDA device');
    expect(resumedEv.devices).toEqual([{ name: 'cpu', fallback, cudaGraph: 'off: not on a CUDA device' }]);
    expect(resumedEv.warnings).toEqual([]);
    expect(fs.readFileSync(path.join(oneEpochDir, 'report.html'), 'utf8')).toContain(
      `<p>Trained on <code>cpu</code>: device 'auto' fell back to the CPU because ${fallback}.</p>`,
    );
  });

  it('emits step, epoch and checkpoint events with consistent numbers', () => {
    // 512 images, batch 100: 6 steps per epoch (the last one of 12 images)
    expect(straightEv.steps.map((s) => s.globalStep)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(straightEv.steps.map((s) => `${s.epoch}:${s.step}/${s.stepsPerEpoch}`).slice(5, 7)).toEqual(['1:6/6', '2:1/6']);
    for (const s of straightEv.steps) {
      expect(Number.isFinite(s.dLoss) && Number.isFinite(s.gLoss) && s.imagesPerSec > 0).toBe(true);
      expect(s.dReal).toBeGreaterThan(0);
      expect(s.dReal).toBeLessThan(1);
    }
    expect(straightEv.epochs.map((e) => [e.epoch, e.epochs, e.steps, e.images, e.globalStep])).toEqual([
      [1, 2, 6, 512, 6],
      [2, 2, 6, 512, 12],
    ]);
    // epoch means are the means of the per-step losses
    const e1 = straightEv.steps.slice(0, 6);
    expect(straightEv.epochs[0].dLoss).toBeCloseTo(e1.reduce((a, s) => a + s.dLoss, 0) / 6, 5);
    expect(straightEv.epochs[1].files).toEqual({
      samples: path.join(straight.runDir, 'samples', 'epoch-002.png'),
      checkpoint: path.join(straight.runDir, 'trainer.json'),
      lossPlot: path.join(straight.runDir, 'loss.png'),
    });
    expect(straightEv.checkpoints.map((c) => [c.epoch, c.globalStep, c.interrupted])).toEqual([
      [1, 6, null],
      [2, 12, null],
    ]);
    expect(straightEv.warnings).toEqual([]);
    expect(straightResult).toMatchObject({ aborted: false, firstEpoch: 1, epoch: 2, epochs: 2, steps: 12, images: 1024, globalStep: 12, interrupted: null });
    expect(straightResult.finalDLoss).toBe(straightEv.epochs[1].dLoss);
  });

  it('resumed on the CPU, gives exactly the losses and weights of the uninterrupted run', () => {
    expect(resumedEv.epochs).toHaveLength(1);
    expect(resumedEv.epochs[0].epoch).toBe(2);
    expect(resumedResult.firstEpoch).toBe(2);
    expect(losses(resumedEv.epochs[0])).toEqual(losses(straightEv.epochs[1]));
    expect(resumedEv.steps.map((s) => [s.globalStep, s.dLoss, s.gLoss])).toEqual(straightEv.steps.slice(6).map((s) => [s.globalStep, s.dLoss, s.gLoss]));
    // the comparison is not trivial: the two epochs differ
    expect(straightEv.epochs[0].dLoss).not.toBe(straightEv.epochs[1].dLoss);
    // the per-step history and the final checkpoint are identical, byte for byte
    expect(csvRows(oneEpochDir)).toEqual(csvRows(straight.runDir));
    expect(csvRows(oneEpochDir)).toHaveLength(12);
    for (const f of ['generator.safetensors', 'discriminator.safetensors', 'optimizer_g.safetensors', 'optimizer_d.safetensors', 'rng.safetensors']) {
      expect({ f, same: fs.readFileSync(path.join(oneEpochDir, f)).equals(fs.readFileSync(path.join(straight.runDir, f))) }).toEqual({ f, same: true });
    }
  });

  it('writes sample grids, the real grid, the loss plot, the report and a TensorBoard file', () => {
    const dir = straight.runDir;
    for (const f of ['samples/epoch-001.png', 'samples/epoch-002.png', 'real.png']) {
      const png = PNG.sync.read(fs.readFileSync(path.join(dir, f)));
      expect([f, png.width, png.height]).toEqual([f, 242, 242]); // 8 x 8 grid of 28 px, padding 2
    }
    const s1 = fs.readFileSync(path.join(dir, 'samples/epoch-001.png'));
    const s2 = fs.readFileSync(path.join(dir, 'samples/epoch-002.png'));
    expect(s1.equals(s2)).toBe(false); // G changed between the epochs
    expect(PNG.sync.read(fs.readFileSync(path.join(dir, 'loss.png'))).width).toBeGreaterThan(300);
    expect(fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8')).toContain('<svg');
    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(report).toContain('samples/epoch-002.png');
    expect(report).toContain('loss.png');
    const events = fs.readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
    expect(events).toHaveLength(1);
    const bytes = fs.readFileSync(path.join(dir, events[0]));
    for (const tag of ['loss/d', 'loss/g', 'D(x)', 'D(G(z))', 'images_per_sec', 'epoch/loss_d', 'epoch/loss_g', 'samples', 'real']) {
      expect({ tag, found: bytes.includes(Buffer.from(tag)) }).toEqual({ tag, found: true });
    }
  });

  (pyTb ? it : it.skip)('TensorBoard reads the scalars and images', () => {
    const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0, 'images': 0})
acc.Reload()
t = acc.Tags()
print(json.dumps({'scalars': {k: [[e.step, e.value] for e in acc.Scalars(k)] for k in t['scalars']}, 'images': {k: [e.step for e in acc.Images(k)] for k in t['images']}}))
`;
    const out = JSON.parse(runPython(pyTb!, ['-c', script, straight.runDir]));
    expect(out.scalars['loss/d'].map((s: number[]) => s[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(out.scalars['loss/d'][0][1]).toBeCloseTo(straightEv.steps[0].dLoss, 5);
    expect(out.scalars['epoch/loss_g'].map((s: number[]) => s[0])).toEqual([1, 2]);
    expect(out.scalars['epoch/loss_g'][1][1]).toBeCloseTo(straightEv.epochs[1].gLoss, 5);
    expect(Object.keys(out.scalars)).toEqual(expect.arrayContaining(['loss/g', 'D(x)', 'D(G(z))', 'images_per_sec', 'epoch/D(x)', 'epoch/images_per_sec']));
    expect(out.images).toEqual({ real: [0], samples: [1, 2] });
  });

  it('checkpoint files hold the state dicts (PyTorch names), optimizer state and RNG state', () => {
    const dir = straight.runDir;
    const g = safetensors.loadFile(path.join(dir, 'generator.safetensors'));
    const own = straight.generator.namedParameters();
    expect(Object.keys(g).sort()).toEqual(own.map(([n]) => n).sort());
    for (const [n, p] of own) {
      expect([n, g[n].shape, sameBits(g[n].toFloat32Array(), p.toFloat32Array())]).toEqual([n, p.shape, true]);
    }
    const d = safetensors.loadFile(path.join(dir, 'discriminator.safetensors'));
    expect(Object.keys(d).sort()).toEqual(['0.bias', '0.weight', '3.bias', '3.weight', '6.bias', '6.weight', '9.bias', '9.weight']);
    const opt = safetensors.loadFileWithMetadata(path.join(dir, 'optimizer_g.safetensors'));
    expect(Object.keys(opt.tensors).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7].flatMap((i) => [`state.${i}.exp_avg`, `state.${i}.exp_avg_sq`]).sort());
    expect(opt.tensors['state.0.exp_avg'].shape).toEqual([256, 100]);
    expect(JSON.parse(opt.metadata.state)['0']).toEqual({ step: 12 });
    expect(JSON.parse(opt.metadata.param_groups)[0]).toMatchObject({ lr: 0.0002, betas: [0.9, 0.999], eps: 1e-8, params: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(JSON.parse(opt.metadata.param_names)).toEqual(own.map(([n]) => n));
    const rng = safetensors.loadFile(path.join(dir, 'rng.safetensors'));
    expect(rng['rng.cpu'].dtype).toBe('uint8');
    expect(rng['rng.cpu'].shape).toEqual(torch.getRngState().shape);
    expect(rng.fixed_noise.shape).toEqual([64, 100]);
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'trainer.json'), 'utf8'));
    expect(state).toMatchObject({
      format: 'libtorch-gan-checkpoint/1',
      epoch: 2,
      globalStep: 12,
      preset: 'vanilla',
      seed: 7,
      shuffleSeed: 7,
      images: 512,
      interrupted: null,
    });
    expect(Object.keys(state.files).sort()).toEqual([
      'discriminator.safetensors',
      'generator.safetensors',
      'optimizer_d.safetensors',
      'optimizer_g.safetensors',
      'rng.safetensors',
    ]);
    // no temporary or '.prev' files are left behind
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp') || f.endsWith('.prev'))).toEqual([]);
    const ckpt = loadCheckpoint(dir);
    expect(ckpt.state.epoch).toBe(2);
    expect(ckpt.optimizerG.state[3].step).toBe(12);
    expect(ckpt.optimizerG.state[3].exp_avg).toBeDefined();
  });

  it('sample() rebuilds G from the run folder: shape, range, seeds, PNG', () => {
    const before = torch.getRngState().toTypedArray();
    const a = sample({ checkpoint: straight.runDir, count: 10, seed: 3 });
    expect(torch.getRngState().toTypedArray()).toEqual(before); // the global generator is untouched
    expect(a.shape).toEqual([10, 28, 28]);
    expect(a.images).toHaveLength(7840);
    expect(a.range).toBe('[-1,1]');
    expect(Math.min(...a.images)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...a.images)).toBeLessThanOrEqual(1);
    expect(Math.max(...a.images) - Math.min(...a.images)).toBeGreaterThan(0.1);
    // same seed, same images; the live trainer's G gives the same ones
    expect(sample({ checkpoint: straight.runDir, count: 10, seed: 3 }).images).toEqual(a.images);
    expect(straight.sample(10, { seed: 3 }).images).toEqual(a.images);
    expect(sample({ checkpoint: straight.runDir, count: 10, seed: 4 }).images).not.toEqual(a.images);
    const file = path.join(root, 'out', 'samples.png');
    saveSamples(file, a);
    const png = PNG.sync.read(fs.readFileSync(file));
    expect([png.width, png.height]).toEqual([242, 62]); // 8 per row: 2 rows
    expect(() => sample({ checkpoint: path.join(root, 'nope'), count: 1 })).toThrow(/does not exist/);
  });

  it('single D and G steps on uint8 batches', () => {
    const batch = torch.tensor(mnist.images.subarray(0, 16 * 784), [16, 784], { dtype: 'uint8' });
    const d = straight.trainDiscriminator(batch);
    const g = straight.trainGenerator(16);
    expect(Number.isFinite(d.dLoss) && d.dReal > 0 && d.dReal < 1 && d.dFake > 0 && d.dFake < 1).toBe(true);
    expect(Number.isFinite(g.gLoss)).toBe(true);
    batch.dispose();
  });

  it('refuses to resume with a different preset, and from a folder without a checkpoint', async () => {
    await expect(Trainer.create({ resume: oneEpochDir, preset: 'ganist' })).rejects.toThrow(ConfigError);
    await expect(Trainer.create({ resume: oneEpochDir, batchSize: 64 })).rejects.toThrow(/batchSize.*trained with 100/);
    await expect(Trainer.create({ resume: path.join(root, 'missing') })).rejects.toThrow(/does not exist/);
    // a resolved config given to a resume: its preset must be the run's but for epochs
    const stored = resolveGiven({ resume: oneEpochDir }).config;
    expect(resolveGiven({ ...stored, preset: { ...stored.preset, epochs: 5 } }).config.preset.epochs).toBe(5);
    expect(() => resolveGiven({ ...stored, preset: { ...stored.preset, batchSize: 7 } })).toThrow(/differs from the preset the run in .* was trained with/);
  });
});

describe('device resolution: one place, the reason from the addon', () => {
  const noGpu = { cudaAvailable: false, cudaUnusable: 'CUDA is not available: no NVIDIA driver was found (libcuda.so.1 could not be loaded)' };

  it('resolveDevice: auto is CUDA when usable, else the CPU with the reason; cuda without CUDA is unusable with the reason', () => {
    expect(resolveDevice('auto', { cudaAvailable: true })).toEqual({ device: 'cuda' });
    expect(resolveDevice('auto', noGpu)).toEqual({ device: 'cpu', fallback: noGpu.cudaUnusable });
    expect(resolveDevice('cpu', noGpu)).toEqual({ device: 'cpu' });
    expect(resolveDevice('cuda', { cudaAvailable: true })).toEqual({ device: 'cuda' });
    expect(resolveDevice('cuda', noGpu)).toEqual({ unusable: noGpu.cudaUnusable });
    // without the addon's reason (an env written by hand) a generic one
    expect(resolveDevice('auto', { cudaAvailable: false })).toEqual({
      device: 'cpu',
      fallback: 'CUDA is not available (no CUDA build of LibTorch or no usable GPU)',
    });
  });

  it('a config asking for cuda names the reason; the resolution says why auto chose the CPU', () => {
    expect(() => resolveConfig({ device: 'cuda' }, noGpu)).toThrow(
      'config.device: "cuda" was requested but CUDA is not available: no NVIDIA driver was found (libcuda.so.1 could not be loaded); use "auto" or "cpu"',
    );
    const fallback = (config: Parameters<typeof resolveConfigAndDevice>[0], env: typeof noGpu | { cudaAvailable: boolean }) =>
      resolveConfigAndDevice(config, env).deviceFallback;
    expect(fallback({}, noGpu)).toBe(noGpu.cudaUnusable);
    expect(fallback({ device: 'auto' }, noGpu)).toBe(noGpu.cudaUnusable);
    expect(fallback({ device: 'cpu' }, noGpu)).toBeUndefined();
    expect(fallback({}, { cudaAvailable: true })).toBeUndefined();
    expect(resolveGiven(resolveConfig({}, noGpu), noGpu).deviceFallback).toBeUndefined(); // resolved by the caller
  });

  (hasCuda ? it.skip : it)("cudaEnv: this machine has no usable GPU, in the addon's words", () => {
    expect(cudaEnv()).toEqual({ cudaAvailable: false, cudaUnusable: `CUDA is not available: ${nativeCudaReason()}` });
  });
});

describe('Trainer: stopping, crash safety', () => {
  it('an abort inside an epoch writes a checkpoint marked interrupted; resuming continues that epoch exactly', async () => {
    // 1024 images: 11 steps per epoch, so that the abort at step 2 lands inside the first epoch
    const cfg = { preset: 'vanilla', seed: 1, device: 'cpu', saveDir: path.join(root, 'abort'), verbose: 0 } as const;
    const straight = await Trainer.create({ ...cfg, epochs: 1 }, { dataset: mnist, limit: 1024 });
    const evS = record(straight);
    await straight.train();
    straight.dispose();

    const t = await Trainer.create({ ...cfg, epochs: 3 }, { dataset: mnist, limit: 1024 });
    const ev = record(t);
    const controller = new AbortController();
    t.on('step', (s) => {
      if (s.globalStep === 2) controller.abort();
    });
    const r = await t.train({ signal: controller.signal });
    t.dispose();
    expect(r.aborted).toBe(true);
    expect(r.epoch).toBe(0);
    expect(r.interrupted?.epoch).toBe(1);
    const k = r.interrupted!.steps;
    expect(k).toBeGreaterThanOrEqual(2);
    expect(k).toBeLessThan(11);
    expect(ev.epochs).toEqual([]);
    expect(ev.checkpoints).toHaveLength(1);
    const state = JSON.parse(fs.readFileSync(path.join(r.runDir, 'trainer.json'), 'utf8'));
    expect(state).toMatchObject({ epoch: 0, globalStep: k, interrupted: r.interrupted });
    const opt = safetensors.loadFileWithMetadata(path.join(r.runDir, 'optimizer_g.safetensors'));
    expect(JSON.parse(opt.metadata.state)['0'].step).toBe(k);
    // the steps done before the stop are in losses.csv already
    expect(csvRows(r.runDir)).toEqual(csvRows(straight.runDir).slice(0, k));

    const again = await Trainer.create({ resume: r.runDir, epochs: 1 }); // the run's limit (1024) and MNIST
    const ev2 = record(again);
    const r2 = await again.train();
    again.dispose();
    expect(ev2.warnings).toEqual([]);
    expect(ev2.epochs.map((e) => [e.epoch, e.steps, e.images])).toEqual([[1, 11, 1024]]);
    expect(ev2.steps[0]).toMatchObject({ epoch: 1, step: k + 1, globalStep: k + 1 });
    expect(r2).toMatchObject({ aborted: false, epoch: 1, globalStep: 11, steps: 11 - k, interrupted: null });
    // exactly the uninterrupted epoch: its steps, its means, its final weights, optimizer and RNG state
    expect(csvRows(r.runDir)).toEqual(csvRows(straight.runDir));
    expect(losses(ev2.epochs[0])).toEqual(losses(evS.epochs[0]));
    for (const f of ['generator.safetensors', 'discriminator.safetensors', 'optimizer_g.safetensors', 'optimizer_d.safetensors', 'rng.safetensors']) {
      expect({ f, same: fs.readFileSync(path.join(r.runDir, f)).equals(fs.readFileSync(path.join(straight.runDir, f))) }).toEqual({ f, same: true });
    }
  });

  it('a crash while replacing the checkpoint files leaves the previous checkpoint loadable', async () => {
    const t = await Trainer.create(
      { preset: 'udacity', seed: 3, device: 'cpu', epochs: 2, saveEvery: 1, saveDir: path.join(root, 'crash'), verbose: 0 },
      { dataset: mnist, limit: 256 },
    );
    let epoch1: Record<string, Float32Array> | undefined;
    const realRename = checkpointFs.rename;
    let armed = false;
    checkpointFs.rename = (from, to) => {
      if (armed && to.endsWith('optimizer_g.safetensors')) throw Object.assign(new Error('EIO: simulated crash'), { code: 'EIO' });
      realRename(from, to);
    };
    t.on('checkpoint', (c) => {
      if (c.epoch !== 1) return;
      const g = safetensors.loadFile(path.join(c.runDir, 'generator.safetensors'));
      epoch1 = Object.fromEntries(Object.entries(g).map(([k, v]) => [k, v.toFloat32Array()]));
      armed = true;
    });
    try {
      await expect(t.train()).rejects.toThrow(/simulated crash/);
    } finally {
      checkpointFs.rename = realRename;
    }
    const dir = t.runDir;
    const gNow = t.generator
      .namedParameters()
      .find(([n]) => n === '0.weight')![1]
      .toFloat32Array();
    t.dispose();
    // generator.safetensors was already replaced by epoch 2's ...
    const replaced = safetensors.loadFile(path.join(dir, 'generator.safetensors'));
    expect(sameBits(replaced['0.weight'].toFloat32Array(), gNow)).toBe(true);
    expect(sameBits(replaced['0.weight'].toFloat32Array(), epoch1!['0.weight'])).toBe(false);
    // ... but the checkpoint is still epoch 1's, complete, from the '.prev' copies
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const ckpt = loadCheckpoint(dir);
    expect(ckpt.state.epoch).toBe(1);
    expect(ckpt.files['generator.safetensors']).toBe(path.join(dir, 'generator.safetensors.prev'));
    expect(ckpt.files['optimizer_g.safetensors']).toBe(path.join(dir, 'optimizer_g.safetensors'));
    for (const [k, v] of Object.entries(ckpt.generator)) expect([k, sameBits(v.toFloat32Array(), epoch1![k])]).toEqual([k, true]);
    expect(sample({ checkpoint: dir, count: 2, seed: 1 }).images).toHaveLength(2 * 784);

    // resuming from it works, and the next checkpoint cleans up
    const again = await Trainer.create({ resume: dir }, { dataset: mnist, limit: 256 });
    expect(again.epoch).toBe(1);
    const r = await again.train();
    again.dispose();
    expect(r.epoch).toBe(2);
    expect(loadCheckpoint(dir).files['generator.safetensors']).toBe(path.join(dir, 'generator.safetensors'));
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.prev') || f.endsWith('.tmp'))).toEqual([]);

    // a damaged file is reported, never loaded
    const g = path.join(dir, 'generator.safetensors');
    fs.truncateSync(g, fs.statSync(g).size - 4);
    expect(() => loadCheckpoint(dir)).toThrow(/generator\.safetensors does not match trainer\.json/);
  });

  it('a crash while writing the temporary files leaves the folder as it was', async () => {
    const t = await Trainer.create(
      { preset: 'udacity', seed: 4, device: 'cpu', epochs: 1, saveDir: path.join(root, 'crash2'), verbose: 0, sampleEvery: 0 },
      { dataset: mnist, limit: 128 },
    );
    await t.train();
    const dir = t.runDir;
    const before = new Map(
      fs
        .readdirSync(dir)
        .filter((f) => /safetensors|trainer\.json/.test(f))
        .map((f) => [f, fs.readFileSync(path.join(dir, f))]),
    );
    const realWrite = checkpointFs.writeTemp;
    let n = 0;
    checkpointFs.writeTemp = (d, name, data) => {
      if (++n === 3) throw Object.assign(new Error('ENOSPC: simulated full disk'), { code: 'ENOSPC' });
      return realWrite(d, name, data);
    };
    try {
      t.trainGenerator(8); // change G so that a new checkpoint would differ
      expect(() => t.checkpoint()).toThrow(/simulated full disk/);
    } finally {
      checkpointFs.writeTemp = realWrite;
      t.dispose();
    }
    const after = fs.readdirSync(dir).filter((f) => /safetensors|trainer\.json|\.tmp$/.test(f));
    expect(after.sort()).toEqual([...before.keys()].sort());
    for (const [f, bytes] of before) expect([f, fs.readFileSync(path.join(dir, f)).equals(bytes)]).toEqual([f, true]);
    expect(loadCheckpoint(dir).state.epoch).toBe(1);
  });

  it('an error thrown by a step listener stops training and is thrown by train()', async () => {
    const t = await Trainer.create(
      { preset: 'udacity', seed: 1, device: 'cpu', epochs: 3, saveDir: path.join(root, 'listener'), verbose: 0 },
      { dataset: mnist, limit: 256, progressEvery: 1 },
    );
    let calls = 0;
    t.on('step', () => {
      calls++;
      throw new Error('listener failed');
    });
    await expect(t.train()).rejects.toThrow('listener failed');
    expect(calls).toBeLessThanOrEqual(4); // 4 steps per epoch: it never got to the second one
    expect(t.epoch).toBe(0);
    t.dispose();
  });

  it('derives distinct per-epoch shuffle seeds from the run seed', () => {
    expect(shuffleSeedFor(7, 1)).toBe(shuffleSeedFor(7, 1));
    expect(new Set([1, 2, 3].map((e) => shuffleSeedFor(7, e))).size).toBe(3);
    expect(shuffleSeedFor(7, 1)).not.toBe(shuffleSeedFor(8, 1));
    expect(shuffleSeedFor(2 ** 40, 5)).toBeLessThan(2 ** 31);
  });
});

describe('Trainer: a BatchNorm preset (ganist) checkpoint', () => {
  let dir: string;
  let trainer: Trainer;
  beforeAll(async () => {
    trainer = await Trainer.create(
      { preset: 'ganist', seed: 5, device: 'cpu', epochs: 1, saveDir: path.join(root, 'ganist'), verbose: 0, sampleEvery: 0 },
      { dataset: mnist, limit: 256 },
    );
    await trainer.train();
    dir = trainer.runDir;
  });
  afterAll(() => trainer?.dispose());

  it('stores parameters and BatchNorm buffers under PyTorch names; samples are in [0,1]', () => {
    const g = safetensors.loadFile(path.join(dir, 'generator.safetensors'));
    const expected = [...trainer.generator.namedParameters(), ...trainer.generator.namedBuffers()];
    expect(Object.keys(g).sort()).toEqual(expected.map(([n]) => n).sort());
    expect(g['0.1.running_mean'].shape).toEqual([128]);
    expect(g['0.1.num_batches_tracked'].dtype).toBe('int64');
    // 256 images, batch 128: 2 steps, each running G in train mode twice (D's fake batch, then G's fresh noise)
    expect(Number(g['0.1.num_batches_tracked'].item())).toBe(4);
    expect(g['4.weight'].shape).toEqual([784, 1024]);
    expect(fs.existsSync(path.join(dir, 'samples'))).toBe(false); // sampleEvery 0
    const s = sample({ checkpoint: dir, count: 4, seed: 1 });
    expect(s.range).toBe('[0,1]');
    expect(Math.min(...s.images)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...s.images)).toBeLessThanOrEqual(1);
  });

  (pyTorch ? it : it.skip)("loads into the preset's PyTorch models with load_state_dict(strict=True)", () => {
    const script = `
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
from safetensors.torch import load_file
from reference import build
run = sys.argv[2]
preset = json.load(open(run + '/config.json'))['config']['preset']
out = {}
for name, spec in (('generator', preset['generator']), ('discriminator', preset['discriminator'])):
    m = build(spec)
    m.load_state_dict(load_file(run + '/' + name + '.safetensors'), strict=True)
    sd = m.state_dict()
    out[name] = {k: [list(v.shape), [float(x) for x in v.reshape(-1)[:3].tolist()], float(v.double().sum())] for k, v in sd.items()}
m = build(preset['generator']).eval()
m.load_state_dict(load_file(run + '/generator.safetensors'), strict=True)
with torch.no_grad():
    out['forward'] = m(torch.zeros(2, preset['zDim'])).reshape(-1)[:5].tolist()
print(json.dumps(out))
`;
    const out = JSON.parse(runPython(pyTorch!, ['-c', script, path.join(__dirname, '..', 'parity'), dir]));
    for (const [name, m] of [
      ['generator', trainer.generator],
      ['discriminator', trainer.discriminator],
    ] as const) {
      const own = Object.fromEntries([...m.namedParameters(), ...m.namedBuffers()]);
      expect(Object.keys(out[name]).sort()).toEqual(Object.keys(own).sort());
      for (const [k, [shape, first, sum]] of Object.entries(out[name]) as [string, [number[], number[], number]][]) {
        const vals = Array.from(own[k].toFloat32Array());
        expect([k, shape]).toEqual([k, own[k].shape]);
        expect([k, first]).toEqual([k, vals.slice(0, 3)]);
        expect(sum).toBeCloseTo(
          vals.reduce((a, b) => a + b, 0),
          2,
        );
      }
    }
    // the same weights compute the same function in PyTorch (eval mode, running statistics)
    const z = torch.zeros([2, 10]);
    trainer.generator.eval();
    const ours = torch
      .noGrad(() => trainer.generator.forward(z))
      .toFloat32Array()
      .slice(0, 5);
    trainer.generator.train();
    for (let i = 0; i < 5; i++) expect(out.forward[i]).toBeCloseTo(ours[i], 5);
  });
});

describe('Trainer: a conditional run (cgan, 128 images)', () => {
  test('labels reach trainEpoch; the grid has a row per class; sample() and Trainer.sample draw the classes asked for', async () => {
    const saveDir = path.join(root, 'cgan');
    const t = await Trainer.create({ preset: 'cgan', epochs: 1, seed: 1, saveDir, device: 'cpu' }, { limit: 128, dataset: mnist });
    expect(t.labels!.shape).toEqual([128]);
    expect(Array.from(t.labels!.toTypedArray() as BigInt64Array, Number)).toEqual(Array.from(mnist.labels.subarray(0, 128)));
    expect(t.fixedLabels!.shape).toEqual([80]);
    const run = await t.train();
    const grid = PNG.sync.read(fs.readFileSync(path.join(run.runDir, 'samples', 'epoch-001.png')));
    expect([grid.width, grid.height]).toEqual([8 * 30 + 2, 10 * 30 + 2]);

    const fours = t.sample(6, { seed: 3, labels: 4 });
    expect([fours.shape, fours.labels]).toEqual([
      [6, 28, 28],
      [4, 4, 4, 4, 4, 4],
    ]);
    expect(sameBits(t.sample(6, { seed: 3, labels: 4 }).images, fours.images)).toBe(true);
    expect(sameBits(t.sample(6, { seed: 3, labels: 5 }).images, fours.images)).toBe(false);
    const drawn = t.sample(6, { seed: 3 });
    expect(drawn.labels).toHaveLength(6);
    expect(() => t.sample(2, { labels: 12 })).toThrow("sample: label 12 is outside [0, 10) (the generator's 10 classes)");
    // from the run folder: the same G, noise and labels from the same seed
    const fromDisk = sample({ checkpoint: run.runDir, count: 6, seed: 3, labels: 4 });
    expect(fromDisk.labels).toEqual(fours.labels);
    expect(sameBits(fromDisk.images, fours.images)).toBe(true);
    expect(sample({ checkpoint: run.runDir, count: 6, seed: 3 }).labels).toEqual(drawn.labels);
    t.dispose();
  });
});
