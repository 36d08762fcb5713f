/** Child processes for multi-process tests (dist): a free loopback port, and a bounded run collecting output. */
import { type ChildProcess, spawn } from 'node:child_process';
import * as net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
  /** Milliseconds from start to exit. */
  ms: number;
}

/** Runs cmd to its end (SIGKILL after timeoutMs); `onOut` sees stdout as it comes and may kill the process. */
export function run(
  cmd: string,
  args: string[],
  opts: {
    env?: Record<string, string>;
    cwd?: string;
    timeoutMs?: number;
    /** Its own process group (signal them all with process.kill(-pid, ...)). */
    detached?: boolean;
    onOut?: (all: string, kill: () => void) => void;
    onSpawn?: (p: ChildProcess) => void;
  } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const p = spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd, detached: opts.detached, stdio: ['ignore', 'pipe', 'pipe'] });
    opts.onSpawn?.(p);
    let out = '';
    let err = '';
    const kill = () => p.kill('SIGKILL');
    p.stdout.on('data', (d) => {
      out += d;
      opts.onOut?.(out, kill);
    });
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(kill, opts.timeoutMs ?? 60_000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err, ms: Date.now() - t0 });
    });
  });
}

/** The last stdout line of a run that exited 0, parsed as JSON. */
export function lastJson<T = unknown>(r: Run): T {
  if (r.code !== 0) throw new Error(`exited ${r.code ?? r.signal}: ${r.err}`);
  return JSON.parse(r.out.trim().split('\n').pop()!) as T;
}
