/**
 * The GPU check's dry run (`bash scripts/device/check.sh --dry-run`): the same phases as on a lent GPU
 * machine, here on the CPU at small sizes, so the script's code paths run in CI. It writes check.json
 * and check.log as it goes (a killed run leaves valid JSON with what it had), records every phase with
 * its timing, records the CUDA parts as skipped with the reason, and ends with the summary table. Phases
 * are bounded by their time budgets (about 55 s in all for a dry run), so on a busy machine one may end
 * 'timed out'; none may fail, and no check may fail or error.
 */
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
