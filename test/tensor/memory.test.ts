/**
 * Native memory over long synchronous loops: each measurement runs the built lib/ in a child process,
 * so that jest's own heap does not disturb its RSS. Node-API runs GC finalizers on a later event-loop
 * turn, so a loop that never awaits must not leave anything to them: dispose() and scope() free the
 * tensor and its native handle at once.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { builtLib } from '../helpers/lib';

const repo = path.resolve(__dirname, '..', '..');
const LIB = path.join(repo, 'lib', 'index.js');

beforeAll(() => {
  builtLib();
}, 120000);

// One step is `a = randn([S, S]); b = a.matmul(a).relu().sum(); b.item()`, its tensors freed as `mode`
// says. At 128x128 the native handles left to the GC's deferred finalizers used to grow RSS by 64 MB to
// 1.5 GB over 20k steps (the leftovers fragment the malloc heap); now it grows by ~12 MB, ~9 MB of it
// V8's heap. One intra-op thread keeps it quick on a busy machine.
const SCRIPT = `
const { torch } = require(${JSON.stringify(LIB)});
const [mode, S, N] = process.argv.slice(-3).map((v, i) => (i ? +v : v));
torch.setNumThreads(1);
const step = {
  dispose() {
    const a = torch.randn([S, S]);
    const m = a.matmul(a);
    const r = m.relu();
    const b = r.sum();
    b.item();
    for (const t of [a, m, r, b]) t.dispose();
  },
  scope() {
    torch.scope(() => {
      const a = torch.randn([S, S]);
      a.matmul(a).relu().sum().item();
    });
  },
  gc() {
    const a = torch.randn([S, S]);
    a.matmul(a).relu().sum().item();
  },
}[mode];
const mb = (bytes) => bytes / 1048576;
(async () => {
  for (let i = 0; i < 200; i++) step();
  await new Promise(setImmediate);
  const at0 = process.memoryUsage();
  const peak = { ...at0 };
  for (let i = 1; i <= N; i++) {
    step();
    // Tensors left to the GC are freed by its finalizers, which run only once the loop yields.
    if (mode === 'gc' && i % 100 === 0) await new Promise(setImmediate);
    if (i % 500 === 0) {
      const now = process.memoryUsage();
      for (const k of ['rss', 'heapTotal', 'external']) peak[k] = Math.max(peak[k], now[k]);
    }
  }
  const growth = (k) => mb(peak[k] - at0[k]);
  // Native growth: RSS less what V8's own heap took.
  console.log(JSON.stringify({ rss: growth('rss'), native: growth('rss') - growth('heapTotal'), external: growth('external') }));
})();
`;

interface Growth {
  rss: number; // MB, peak over the loop less the start
  native: number; // rss less V8's heap
  external: number; // what V8 was told native objects hold
}

function measure(mode: 'dispose' | 'scope' | 'gc', steps: number): Growth {
  const r = spawnSync(process.execPath, ['-e', SCRIPT, mode, '128', String(steps)], {
    encoding: 'utf8',
    timeout: 90000,
  });
  if (r.status !== 0) throw new Error(`the child exited with ${r.status ?? r.signal}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
}

describe('memory over synchronous loops', () => {
  it.each(['dispose', 'scope'] as const)(
    '%s: 20k steps without an await keep RSS bounded',
    (mode) => {
      const m = measure(mode, 20000);
      expect(m.native).toBeLessThan(32);
      expect(m.rss).toBeLessThan(64);
      // V8 is told of each tensor's bytes, and told again when it is freed.
      expect(m.external).toBeLessThan(8);
    },
    120000,
  );

  it('tensors left to the GC are freed once the loop awaits now and then', () => {
    // Without the awaits this loop would hold 3 x 64 kB per step: 384 MB over 2k steps.
    expect(measure('gc', 2000).rss).toBeLessThan(200);
  }, 120000);
});
