#!/usr/bin/env node
// The GPU check (`bash scripts/device/check.sh`, which unpacks what scripts/device/pack.sh packed): runs
// scripts/device/phases.mjs's phases in order of value, each in a process of its own killed at its time
// budget, so the whole run ends in about 6 minutes on a lent GPU machine and nothing is compiled there:
//   info         CUDA build, CUDA graphs compiled in, GPU, LibTorch version
//   correctness  every preset's fused step on CUDA against the CPU, graphed epochs against eager ones,
//                the MLP fast path against autograd (TF32 off: NVIDIA_TF32_OVERRIDE=0)
//   speed        ms/step of the fused step (CUDA graph, eager), the facade and PyTorch eager
//   epochs       a full 60,000-image epoch of vanilla and cgan, fused (graph) and PyTorch eager first
//   nccl         a one-rank NCCL data-parallel epoch against the single-process one
// Every result is written as it comes: $OUT/check.json (rewritten atomically after each record and
// phase) and $OUT/check.log (appended); the last lines printed are a short summary, also in
// $OUT/summary.md. --dry-run walks the same phases on the CPU here at small sizes: the CUDA parts are
// recorded as skipped (with what their CPU rehearsal measured). Options: --dry-run, --out DIR
// (default $OUT, else a folder under the system's temporary folder), --only PHASE[,PHASE].
// Exit status: 0 when every phase ran and nothing failed, 1 otherwise.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { summarize } from './summary.mjs';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
// This process loads no LibTorch (only the package's file helpers): a phase that crashes cannot take the record with it.
const { writeFileAtomic, ensureDir } = require('../../lib/util/fs.js');

const USAGE = 'usage: bash scripts/device/check.sh [--dry-run] [--out DIR] [--only PHASE[,PHASE]]';
let args;
try {
  args = parseArgs({
    options: {
      'dry-run': { type: 'boolean', default: false },
      out: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      // from check.sh: when it started (epoch ms; its unpacking counts against the 6 minutes) and how long unpacking took
      t0: { type: 'string' },
      'unpack-ms': { type: 'string' },
    },
  }).values;
} catch (e) {
  console.error(`check: ${e.message}\n${USAGE}`);
  process.exit(2);
}
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const dry = args['dry-run'];
const out = path.resolve(args.out ?? process.env.OUT ?? path.join(os.tmpdir(), dry ? 'ltg-device-check-dry' : 'ltg-device-check'));
ensureDir(out, 'check output folder');
const jsonFile = path.join(out, 'check.json');
const logFile = path.join(out, 'check.log');
fs.writeFileSync(logFile, '');

// Seconds per phase: about 6 minutes in all on the device with the unpacking; the dry run's bound its
// test. A phase's items stop being started BEFORE s before its end; the process is killed at its end.
const BEFORE = dry ? 2 : 8;
const PHASES = [
  { name: 'info', budget: dry ? 8 : 45 },
  // TF32 off for the comparisons: NVIDIA's libraries (cuBLAS, cuDNN) read NVIDIA_TF32_OVERRIDE=0 at start.
  { name: 'correctness', budget: dry ? 12 : 75, env: dry ? {} : { NVIDIA_TF32_OVERRIDE: '0' }, args: dry ? [] : ['--tf32-off'] },
  { name: 'speed', budget: dry ? 16 : 95 },
  { name: 'epochs', budget: dry ? 12 : 80 },
  { name: 'nccl', budget: dry ? 6 : 30 },
];
const only = args.only?.split(',');
const unknown = only?.filter((n) => !PHASES.some((p) => p.name === n));
if (unknown?.length) {
  console.error(`check: --only: unknown phase ${JSON.stringify(unknown[0])} (expected ${PHASES.map((p) => p.name).join(', ')})\n${USAGE}`);
  process.exit(2);
}

const t0 = Number(args.t0) || Date.now();
const since = () => Number(((Date.now() - t0) / 1000).toFixed(1));
const state = {
  format: 'libtorch-gan-device-check/1',
  dryRun: dry,
  started: new Date(t0).toISOString(),
  done: false,
  phases: [],
  records: [],
};
if (args['unpack-ms']) state.phases.push({ name: 'unpack', status: 'ok', seconds: Number(args['unpack-ms']) / 1000, startS: 0 });

const save = () => writeFileAtomic(jsonFile, `${JSON.stringify(state, null, 1)}\n`);
function log(line, echo = true) {
  fs.appendFileSync(logFile, `${line}\n`);
  if (echo) console.log(line);
}
save();
log(`device check${dry ? ' (dry run: CPU, small sizes)' : ''}: writing ${jsonFile} and ${logFile} as it goes`);

function describe(rec) {
  const fig = [];
  if (rec.ms !== undefined) fig.push(`${rec.ms} ms/step`);
  if (rec.seconds !== undefined && rec.kind === 'epochS') fig.push(`${rec.seconds} s`);
  if (rec.maxAbsDiff !== undefined && rec.status !== 'skipped') fig.push(`max abs diff ${rec.maxAbsDiff} (bound ${rec.bound})`);
  if (rec.perTorch != null) fig.push(`${rec.perTorch}x PyTorch`);
  if (rec.reason) fig.push(rec.reason);
  if (rec.error) fig.push(rec.error.split('\n')[0]);
  const failed = (rec.facts ?? []).filter((f) => f.got !== f.want).map((f) => `${f.what}: got ${JSON.stringify(f.got)}, want ${JSON.stringify(f.want)}`);
  return `${rec.status.padEnd(7)} ${rec.name}${fig.length ? `: ${fig.join(', ')}` : ''}${failed.length ? ` [${failed.join('; ')}]` : ''}`;
}

/** Runs one phase in a child process; resolves with its status once it exits or is killed at its budget. */
function runPhase(ph) {
  const entry = { name: ph.name, status: 'running', budgetS: ph.budget, startS: since() };
  state.phases.push(entry);
  save();
  log(`::: ${ph.name} (budget ${ph.budget} s) at ${entry.startS} s`);
  const start = Date.now();
  const end = start + ph.budget * 1000;
  const childArgs = [
    path.join(here, 'phases.mjs'),
    ph.name,
    '--deadline',
    String(end - BEFORE * 1000),
    '--hints',
    jsonFile,
    ...(dry ? ['--dry-run'] : []),
    ...(ph.args ?? []),
  ];
  return new Promise((resolve) => {
    // A process group of its own: the kill at the budget takes its PyTorch server with it.
    const child = spawn(process.execPath, childArgs, { cwd: root, env: { ...process.env, ...ph.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, end - Date.now());
    const lines = (stream, onLine) => {
      let buf = '';
      stream.on('data', (d) => {
        buf += d;
        for (let k = buf.indexOf('\n'); k >= 0; k = buf.indexOf('\n')) {
          onLine(buf.slice(0, k));
          buf = buf.slice(k + 1);
        }
      });
      stream.on('end', () => buf && onLine(buf));
    };
    lines(child.stdout, (line) => {
      if (!line.startsWith('@record ')) return log(`  [${ph.name}] ${line}`, false);
      let rec;
      try {
        rec = JSON.parse(line.slice('@record '.length));
      } catch {
        return log(`  [${ph.name}] unreadable record: ${line}`);
      }
      rec = { phase: ph.name, atS: since(), ...rec };
      state.records.push(rec);
      save();
      log(`  ${describe(rec)}`);
    });
    lines(child.stderr, (line) => log(`  [${ph.name} stderr] ${line}`, false));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      entry.seconds = Number(((Date.now() - start) / 1000).toFixed(1));
      entry.status = killed ? 'timed out' : code === 0 ? 'ok' : 'failed';
      if (killed) entry.reason = `killed at its budget of ${ph.budget} s`;
      else if (code !== 0) entry.reason = `exited ${code ?? signal} (see check.log)`;
      save();
      log(`::: ${ph.name}: ${entry.status} in ${entry.seconds} s${entry.reason ? ` (${entry.reason})` : ''}`);
      resolve(entry);
    });
  });
}

let blocked = null; // why the phases after a failed info cannot run
for (const ph of PHASES) {
  if (only && !only.includes(ph.name)) continue;
  if (blocked) {
    state.phases.push({ name: ph.name, status: 'skipped', reason: blocked, budgetS: ph.budget, seconds: 0, startS: since() });
    save();
    log(`::: ${ph.name}: skipped (${blocked})`);
    continue;
  }
  const e = await runPhase(ph);
  if (ph.name === 'info' && e.status !== 'ok') {
    const why = state.records.find((r) => r.phase === 'info' && r.name === 'runtime' && r.status !== 'pass');
    blocked = why ? (why.cudaUnusable ?? 'CUDA is not available to LibTorch (see info)') : `the info phase ${e.status} (the addon did not load? see check.log)`;
  }
}

// ---------------------------------------------------------------------------------------------------
// The short summary: Markdown, printed last and written to summary.md.

const { text: summary, ok } = summarize(state, since());
state.done = true;
state.seconds = since();
save();
writeFileAtomic(path.join(out, 'summary.md'), `${summary}\n`);
log(`\n${summary}`);
process.exitCode = ok ? 0 : 1;
