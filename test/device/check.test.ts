/**
 * The GPU check's dry run (`bash scripts/device/check.sh --dry-run`): the same phases as on a lent GPU
 * machine, here on the CPU at small sizes, so the script's code paths run in CI. It writes check.json
 * and check.log as it goes (a killed run leaves valid JSON with what it had), records every phase with
 * its timing, records the CUDA parts as skipped with the reason, and ends with the summary table. Phases
 * are bounded by their time budgets (about 55 s in all for a dry run), so on a busy machine one may end
 * 'timed out'; none may fail, and no check may fail or error.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { builtLib } from '../helpers/lib';
import { run } from '../helpers/processes';

const root = path.resolve(__dirname, '..', '..');
const script = path.join(root, 'scripts', 'device', 'check.sh');
const PHASES = ['info', 'correctness', 'speed', 'epochs', 'nccl'];

interface Phase {
  name: string;
  status: string;
  reason?: string;
  budgetS: number;
  seconds: number;
  startS: number;
}
interface CheckRecord {
  phase: string;
  name: string;
  status: string;
  atS: number;
  reason?: string;
  [k: string]: unknown;
}
interface State {
  format: string;
  dryRun: boolean;
  done: boolean;
  phases: Phase[];
  records: CheckRecord[];
}

const readState = (out: string): State => JSON.parse(fs.readFileSync(path.join(out, 'check.json'), 'utf8'));

beforeAll(() => {
  builtLib();
});

test('dry run: every phase recorded with its timing, CUDA parts skipped with the reason, figures and summary written', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-check-'));
  const r = await run('bash', [script, '--dry-run', '--out', out], { timeoutMs: 85_000 });
  const state = readState(out);
  expect(state.format).toBe('libtorch-gan-device-check/1');
  expect(state.dryRun).toBe(true);
  expect(state.done).toBe(true);
  expect(state.phases.map((p) => p.name)).toEqual(PHASES);
  for (const p of state.phases) {
    expect(['ok', 'timed out']).toContain(p.status);
    expect(p.seconds).toBeGreaterThan(0);
    // a phase is killed at its budget
    expect(p.seconds).toBeLessThan(p.budgetS + 3);
    expect(p.startS).toBeGreaterThanOrEqual(0);
  }
  expect(state.phases[0].status).toBe('ok');
  const runtime = state.records.find((x) => x.name === 'runtime')!;
  expect(runtime).toMatchObject({ phase: 'info', status: 'pass', cudaAvailable: expect.any(Boolean), cudaGraphs: expect.any(Boolean) });
  expect(runtime.libtorch).toMatch(/^\d+\.\d+\.\d+/);

  for (const x of state.records) {
    expect(PHASES).toContain(x.phase);
    expect(['pass', 'skipped']).toContain(x.status);
    expect(typeof x.atS).toBe('number');
    if (x.status === 'skipped') expect(x.reason).toEqual(expect.any(String));
  }
  // what needs a GPU is skipped, saying why
  const skippedForGpu = state.records.filter((x) => x.reason?.includes('no CUDA device (dry run)')).map((x) => x.phase);
  for (const p of state.phases.filter((x) => x.status === 'ok' && x.name !== 'info')) expect(skippedForGpu).toContain(p.name);
  // a check records its largest difference and its bound
  const fast = state.records.find((x) => x.name.startsWith('ganist: MLP fast path = autograd path'));
  if (fast) expect(fast).toMatchObject({ status: 'pass', maxAbsDiff: expect.any(Number), bound: 1e-4 });

  const log = fs.readFileSync(path.join(out, 'check.log'), 'utf8');
  for (const p of PHASES) expect(log).toMatch(new RegExp(`^::: ${p}: (ok|timed out) in [\\d.]+ s`, 'm'));
  const summary = fs.readFileSync(path.join(out, 'summary.md'), 'utf8');
  expect(summary).toMatch(/^## Device check \(dry run on the CPU\)/);
  for (const p of PHASES) expect(summary).toMatch(new RegExp(`^\\| ${p} \\| (ok|timed out)`, 'm'));
  // the summary is printed last
  expect(r.out.trim().endsWith(summary.trim())).toBe(true);
  expect(r.code).toBe(state.phases.every((p) => p.status === 'ok') ? 0 : 1);
  expect(r.ms).toBeLessThan(60_000);
}, 90_000);

test('a run killed midway leaves check.json valid, with the records it had', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-check-'));
  // node directly (check.sh would exec it anyway): the kill reaches the process that writes
  const r = await run(process.execPath, [path.join(root, 'scripts', 'device', 'check.mjs'), '--dry-run', '--only', 'info', '--out', out], {
    timeoutMs: 30_000,
    onOut: (all, kill) => {
      if (/pass {4}runtime/.test(all)) kill();
    },
  });
  expect(r.signal).toBe('SIGKILL');
  const state = readState(out);
  expect(state.done).toBe(false);
  expect(state.phases[0]).toMatchObject({ name: 'info', status: expect.stringMatching(/^(running|ok)$/) });
  expect(state.records.map((x) => x.name)).toContain('runtime');
  expect(fs.readFileSync(path.join(out, 'check.log'), 'utf8')).toContain('::: info (budget');
}, 40_000);

test('the summary of a GPU run: phases, checks, the best round of each path, the CUDA epoch target', () => {
  const rec = (phase: string, name: string, status: string, more: object = {}) => ({ phase, name, status, atS: 1, ...more });
  const step = (path: string, ms: number) => rec('speed', `vanilla batch 64: ${path}`, 'pass', { kind: 'stepMs', preset: 'vanilla', batch: 64, path, ms });
  const epoch = (path: string, seconds: number) =>
    rec('epochs', `epoch vanilla: ${path}`, 'pass', { kind: 'epochS', preset: 'vanilla', batch: 64, path, seconds });
  const state = {
    dryRun: false,
    started: '2026-12-06T12:00:00.000Z',
    phases: ['info', 'correctness', 'speed', 'epochs', 'nccl'].map((name, i) => ({ name, status: 'ok', budgetS: 30, seconds: i + 1.5, startS: i * 10 })),
    records: [
      rec('info', 'runtime', 'pass', {
        gpus: ['NVIDIA H100 80GB HBM3'],
        libtorch: '2.11.0+cu130',
        cudaBuild: true,
        cudaVersion: '13.0',
        cudaGraphs: true,
        binary: { file: 'prebuilds/linux-x64/torch-2.11.0-cu130/libtorch-gan.node', kind: 'prebuild' },
        nccl: { available: true, version: '2.28.9', missing: '' },
        node: 'v20.20.2',
      }),
      rec('correctness', 'vanilla: fused step on CUDA = on the CPU', 'pass', { maxAbsDiff: 3e-6, bound: 1e-4 }),
      rec('correctness', 'cgan: fused step on CUDA = on the CPU', 'fail', { maxAbsDiff: 2e-3, bound: 1e-3 }),
      rec('nccl', 'one-rank nccl data-parallel epoch = single-process epoch (CUDA)', 'skipped', { reason: "backend 'nccl' is not available in this build" }),
      step('fused', 0.5),
      step('fusedEager', 2),
      step('facade', 5),
      step('torch', 4),
      epoch('fused', 0.09),
      epoch('fused', 0.08),
      epoch('torch', 1.2),
    ],
  };
  const code = `import { summarize } from ${JSON.stringify(path.join(root, 'scripts', 'device', 'summary.mjs'))};
    process.stdout.write(JSON.stringify(summarize(JSON.parse(process.argv[1]), 300)));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, JSON.stringify(state)], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  const { text, ok } = JSON.parse(r.stdout);
  expect(ok).toBe(false); // a check failed
  expect(text).toMatch(/^## Device check, 2026-12-06\n\nNVIDIA H100 80GB HBM3; LibTorch 2\.11\.0\+cu130 \(CUDA 13\.0 build, CUDA graphs compiled in\)/);
  expect(text).toContain('binary prebuilds/linux-x64/torch-2.11.0-cu130/libtorch-gan.node (prebuild); NCCL 2.28.9; Node v20.20.2');
  expect(text).toContain('| correctness | ok | 2.5 | 30 |');
  expect(text).toContain('| cgan: fused step on CUDA = on the CPU | fail | 0.002 | 0.001 |');
  expect(text).toContain(
    "| one-rank nccl data-parallel epoch = single-process epoch (CUDA) | skipped: backend 'nccl' is not available in this build | n/a | n/a |",
  );
  expect(text).toContain('| vanilla batch 64 | 0.5 | 2 | 5 | 4 | 8x faster |');
  expect(text).toContain('| vanilla batch 64 | 0.08 | n/a | n/a | 1.2 | 15x faster |');
  expect(text).toContain('target full epoch >= 10x faster than PyTorch eager and under 0.1 s (vanilla, batch 64): 15x, 0.08 s, met');
  expect(text).toMatch(/1 check\(s\) failed or errored; every phase completed; 300 s in all/);
});
