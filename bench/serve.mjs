#!/usr/bin/env node
// `npm run bench:serve`: `libtorch-gan serve` under load next to a PyTorch baseline serving the same
// generator (bench/torch_serve.py: FastAPI + uvicorn, as a PyTorch user writes it), in one run on this
// machine. For each preset: a run trained briefly (the weights do not change the cost), then each server
// in turn, started as a CLI user starts it. autocannon (in this process) asks for GET
// /sample.png?count=C at 1, 16 and 64 connections, each level warmed for 2 s and then measured for
// --duration seconds: requests/s, p50/p99 latency, non-2xx answers, the server's RSS; for ours also the
// images per forward pass and calls coalesced into it and the event loop's delay (from /metrics). Then
// --soak requests at 16 connections against ours, its RSS sampled each second: memory stays flat.
// Both servers run LibTorch's default intra-op threads on the same cores as the load generator.
// Prints Markdown and writes it to --out (default bench/results-serve.local.md, git-ignored).
// Options: --presets cgan,vanilla --connections 1,16,64 --duration 10 --count 1 --soak 100000
// --max-wait-ms 0 (serve's coalescing wait) --no-python
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import lib from '../lib/index.js';
import checkpoint from '../lib/store/checkpoint.js';

const { getPreset, info } = lib;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const cli = path.join(root, 'lib/cli/main.js');
const py = path.join(root, '.venv/bin/python');
const USAGE =
  'usage: npm run bench:serve -- [--presets cgan,vanilla] [--connections 1,16,64] [--duration S] [--count N] [--soak N] [--max-wait-ms N] [--no-python] [--out FILE]';

function usageError(msg) {
  console.error(`bench:serve: ${msg}\n${USAGE}`);
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      presets: { type: 'string', default: 'cgan,vanilla' },
      connections: { type: 'string', default: '1,16,64' },
      duration: { type: 'string', default: '10' },
      count: { type: 'string', default: '1' },
      soak: { type: 'string', default: '100000' },
      'max-wait-ms': { type: 'string', default: '0' },
      'no-python': { type: 'boolean', default: false },
      out: { type: 'string', default: path.join('bench', 'results-serve.local.md') },
      help: { type: 'boolean', short: 'h', default: false },
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
const positive = (name, v) => {
  if (!/^\d+$/.test(v) || Number(v) < 1) usageError(`--${name}: expected a whole number >= 1, got ${JSON.stringify(v)}`);
  return Number(v);
};
const presetNames = args.presets.split(',');
for (const p of presetNames) {
  try {
    getPreset(p);
  } catch (e) {
    usageError(`--presets: ${e.message}`);
  }
}
const levels = args.connections.split(',').map((c) => positive('connections', c));
const duration = positive('duration', args.duration);
const count = positive('count', args.count);
const soak = args.soak === '0' ? 0 : positive('soak', args.soak);
const withPython = !args['no-python'];
if (!/^\d+$/.test(args['max-wait-ms'])) usageError(`--max-wait-ms: expected a whole number >= 0, got ${JSON.stringify(args['max-wait-ms'])}`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-bench-serve-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

/** The baseline's Python packages (bench/requirements-serve.txt), installed into .venv when missing. */
function ensurePython() {
  if (spawnSync(py, ['-c', 'import fastapi, uvicorn, PIL'], { stdio: 'ignore' }).status === 0) return;
  console.error('bench:serve: installing the baseline packages (bench/requirements-serve.txt) into .venv');
  const r = spawnSync(py, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', path.join(here, 'requirements-serve.txt')], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('pip could not install bench/requirements-serve.txt');
}

/** A run of the preset, trained on 256 images for one epoch, as a user's run folder. */
function trainRun(preset) {
  const saveDir = path.join(tmp, preset);
  const r = spawnSync(
    process.execPath,
    [cli, 'train', '--preset', preset, '--limit', '256', '--epochs', '1', '--seed', '1', '--sample-every', '0', '--verbose', '0', '--save-dir', saveDir],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`libtorch-gan train --preset ${preset} failed:\n${r.stderr}`);
  return path.join(
    saveDir,
    fs.readdirSync(saveDir).find((n) => /^run-\d+$/.test(n)),
  );
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Resident memory of a process in MB (Linux /proc, else ps). */
function rssMB(pid) {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    if (kb) return Number(kb) / 1024;
  } catch {}
  return Number(spawnSync('ps', ['-o', 'rss=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim()) / 1024;
}

async function waitHealthy(url, child, what) {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before answering`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not answer /healthz within 120 s`);
}

/** Starts a server process; resolves to { url, pid, stop() } once it answers /healthz. */
async function start(kind, preset, run, presetsFile) {
  const port = await freePort();
  const child =
    kind === 'ours'
      ? spawn(process.execPath, [cli, 'serve', run, '--port', String(port), '--watch-ms', '0', '--max-count', '256', '--max-wait-ms', args['max-wait-ms']], {
          stdio: ['ignore', 'pipe', 'pipe'],
        })
      : spawn(
          py,
          [
            path.join(here, 'torch_serve.py'),
            '--presets',
            presetsFile,
            '--preset',
            preset,
            '--weights',
            checkpoint.checkpointFile(run, 'generator.safetensors'),
            '--port',
            String(port),
          ],
          { stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.resume();
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitHealthy(url, child, kind === 'ours' ? 'libtorch-gan serve' : 'torch_serve.py');
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${stderr}`);
  }
  const stop = () =>
    new Promise((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  return { url, pid: child.pid, stop, stderr: () => stderr };
}

/** The metrics of ours that the bench reads: counters, and the event loop's delay since the last scrape. */
async function scrape(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const num = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    forwards: num('ltg_batch_images_count'),
    images: num('ltg_batch_images_sum'),
    calls: num('ltg_batch_calls_sum'),
    loopP99: num('ltg_event_loop_delay_p99_seconds') * 1000,
    loopMax: num('ltg_event_loop_delay_max_seconds') * 1000,
  };
}

/** Waits until the requests autocannon left in flight are answered (ours: its queue depth is 0). */
async function drained(kind, server) {
  if (kind !== 'ours') return new Promise((r) => setTimeout(r, 1000));
  for (let i = 0; i < 100; i++) {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    if (/^ltg_queue_depth 0$/m.test(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the server still had requests queued 5 s after the load stopped');
}

const load = (url, connections, opts) => autocannon({ url: `${url}/sample.png?count=${count}`, connections, timeout: 60, ...opts });

async function measure(kind, server) {
  const rows = [];
  for (const connections of levels) {
    await load(server.url, connections, { duration: 2 }); // warm: first batches, thread pools, caches
    await drained(kind, server); // the warm-up's last requests must not count against the queue bound
    if (kind === 'ours') await scrape(server.url); // the loop's delay counts from here
    const before = kind === 'ours' ? await scrape(server.url) : undefined;
    const r = await load(server.url, connections, { duration });
    const after = kind === 'ours' ? await scrape(server.url) : undefined;
    const forwards = after ? after.forwards - before.forwards : undefined;
    rows.push({
      kind,
      connections,
      rps: r.requests.average,
      p50: r.latency.p50,
      p99: r.latency.p99,
      ok: r['2xx'],
      bad: r.non2xx + r.errors + r.timeouts,
      imagesPerForward: forwards ? (after.images - before.images) / forwards : undefined,
      callsPerForward: forwards ? (after.calls - before.calls) / forwards : undefined,
      loopP99: after?.loopP99,
      loopMax: after?.loopMax,
      rss: rssMB(server.pid),
    });
    console.error(`  ${kind} ${connections} connections: ${r.requests.average.toFixed(0)} req/s`);
  }
  return rows;
}

async function soakRun(server) {
  await load(server.url, 16, { duration: 2 });
  await drained('ours', server);
  const rss = [rssMB(server.pid)];
  const timer = setInterval(() => rss.push(rssMB(server.pid)), 1000);
  const t0 = performance.now();
  const r = await load(server.url, 16, { amount: soak });
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  rss.push(rssMB(server.pid));
  const m = await scrape(server.url);
  return { seconds, requests: r['2xx'], bad: r.non2xx + r.errors + r.timeouts, before: rss[0], after: rss.at(-1), max: Math.max(...rss), loopMax: m.loopMax };
}

const f = (x, d = 0) => (x === undefined || Number.isNaN(x) ? '' : x.toFixed(d));

async function main() {
  if (withPython) ensurePython();
  const rt = info();
  const torchVersion = withPython ? spawnSync(py, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() : '';
  const out = [
    `## Serving under load (CPU): ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${os.cpus()[0]?.model}, ${os.availableParallelism()} cores; LibTorch ${rt.libtorch.version}; Node ${process.version}${torchVersion ? `; PyTorch ${torchVersion}, FastAPI + uvicorn (bench/torch_serve.py)` : ''}. GET /sample.png?count=${count}, ${duration} s per level after 2 s of warm-up; serve --max-wait-ms ${args['max-wait-ms']}; autocannon in the bench's own process on the same cores.`,
    '',
  ];
  for (const preset of presetNames) {
    console.error(`bench:serve: ${preset}`);
    const run = trainRun(preset);
    const presetsFile = path.join(tmp, 'presets.json');
    fs.writeFileSync(presetsFile, JSON.stringify({ [preset]: getPreset(preset) }));
    const rows = [];
    let soaked;
    for (const kind of withPython ? ['ours', 'pytorch'] : ['ours']) {
      const server = await start(kind, preset, run, presetsFile);
      let measured;
      try {
        rows.push(...(await measure(kind, server)));
        if (kind === 'ours' && soak) soaked = await soakRun(server);
        measured = true;
      } finally {
        const code = await server.stop();
        // a failed drain is reported, not hidden behind the measurement's own error
        if (measured && kind === 'ours' && code !== 0) {
          console.error(`bench:serve: libtorch-gan serve exited ${code} on SIGTERM:\n${server.stderr()}`);
          process.exitCode = 1;
        }
      }
    }
    out.push(
      `### ${preset}`,
      '',
      '| server | connections | requests/s | p50 ms | p99 ms | non-2xx or errors | images per forward | calls per forward | event-loop delay p99 / max ms | RSS MB |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.kind === 'ours' ? 'libtorch-gan serve' : 'PyTorch (FastAPI)'} | ${r.connections} | ${f(r.rps)} | ${f(r.p50, 1)} | ${f(r.p99, 1)} | ${r.bad} | ${f(r.imagesPerForward, 1)} | ${f(r.callsPerForward, 1)} | ${r.loopP99 === undefined ? '' : `${f(r.loopP99, 1)} / ${f(r.loopMax, 1)}`} | ${f(r.rss)} |`,
      ),
      '',
    );
    if (withPython) {
      const ratio = levels.map((c) => {
        const o = rows.find((r) => r.kind === 'ours' && r.connections === c);
        const p = rows.find((r) => r.kind === 'pytorch' && r.connections === c);
        return `${c}: ${(o.rps / p.rps).toFixed(2)}x`;
      });
      out.push(`Requests/s, ours / PyTorch's, by connections: ${ratio.join(', ')}.`, '');
    }
    if (soaked) {
      out.push(
        `Soak: ${soaked.requests} requests answered (${soaked.bad} not 2xx) at 16 connections in ${f(soaked.seconds)} s; RSS ${f(soaked.before)} MB before, ${f(soaked.after)} MB after (max ${f(soaked.max)} MB, sampled each second); event-loop delay max ${f(soaked.loopMax, 1)} ms.`,
        '',
      );
    }
  }
  const text = out.join('\n');
  console.log(text);
  fs.writeFileSync(args.out, `${text}\n`);
}

main().catch((e) => {
  console.error(`bench:serve: ${e.stack ?? e}`);
  process.exit(1);
});
