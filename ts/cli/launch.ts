/**
 * Data-parallel launches of `train`: joining the group that torchrun (or `--nproc`) describes in the
 * environment, and `--nproc N`, which spawns the N ranks on this machine as torchrun --standalone does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import * as os from 'node:os';
import * as dist from '../distributed/index';
import { type ProcessGroup } from '../distributed/index';
import { type CliIO, writeLine } from './commands/common';

/** The ranks torchrun's variables describe (RANK, WORLD_SIZE), or null for a one-process run. */
export function ranksFromEnv(env: NodeJS.ProcessEnv): { rank: number; worldSize: number } | null {
  if (env.WORLD_SIZE === undefined || Number(env.WORLD_SIZE) === 1) return null;
  return { rank: Number(env.RANK), worldSize: Number(env.WORLD_SIZE) };
}

/**
 * Joins the env:// group over `backend` when launched as one rank of several (dist.initProcessGroup checks
 * the variables; NCCL binds the rank to cuda:LOCAL_RANK).
 */
export async function joinFromEnv(env: NodeJS.ProcessEnv, timeoutMs: number, backend: dist.Backend = 'gloo'): Promise<ProcessGroup | null> {
  if (!ranksFromEnv(env)) return null;
  await dist.initProcessGroup({ backend, initMethod: 'env://', timeoutMs });
  return dist.group.WORLD;
}

/**
 * The most ranks `--nproc` starts without --nproc-oversubscribe: one per CPU core this process may use
 * (each rank is a whole process with the data and both models; more ranks than cores only share them),
 * two at least, so that a data-parallel run can be tried on any machine.
 */
export function nprocLimit(): number {
  return Math.max(2, os.availableParallelism());
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Prefixes each line of `from` with `[rank r] ` onto `to`. */
function prefixLines(from: NodeJS.ReadableStream, to: CliIO['stderr'], rank: number): void {
  let rest = '';
  from.on('data', (d) => {
    const lines = (rest + d).split('\n');
    rest = lines.pop()!;
    for (const l of lines) writeLine(to, `[rank ${rank}] ${l}`);
  });
  from.on('end', () => rest && writeLine(to, `[rank ${rank}] ${rest}`));
}

/**
 * Runs `args` (a train command line without --nproc) as `n` ranks on this machine: rank 0 prints as a
 * one-process run does, the others only their errors (prefixed "[rank r]"). When a rank fails the others
 * are stopped (as torchrun does). Ctrl-C reaches every rank (one process group), and they stop together.
 * Resolves to rank 0's exit code, or the first failing rank's.
 */
export async function spawnRanks(n: number, args: string[], io: CliIO): Promise<number> {
  const port = await freePort();
  const script = process.argv[1];
  const children: ChildProcess[] = [];
  let failure: number | null = null;
  const ended = Array.from({ length: n }, (_, rank) => {
    const env = {
      ...io.env,
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      RANK: String(rank),
      LOCAL_RANK: String(rank),
      WORLD_SIZE: String(n),
      LOCAL_WORLD_SIZE: String(n),
    };
    const child = spawn(process.execPath, [...process.execArgv, script, 'train', ...args], {
      env,
      stdio: ['ignore', rank === 0 ? 'pipe' : 'ignore', 'pipe'],
    });
    children.push(child);
    child.stdout?.on('data', (d) => io.stdout.write(d));
    if (rank === 0) child.stderr!.on('data', (d) => io.stderr.write(d));
    else prefixLines(child.stderr!, io.stderr, rank);
    return new Promise<number>((resolve) => {
      child.on('close', (code, signal) => {
        const c = code ?? (signal === 'SIGINT' ? 130 : 1);
        if (c !== 0 && c !== 130 && failure === null) {
          failure = c;
          for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
        }
        resolve(c);
      });
    });
  });
  // the ranks handle Ctrl-C themselves; this process only waits for them
  const stopListening = io.onInterrupt?.(() => {});
  try {
    const codes = await Promise.all(ended);
    return failure ?? codes[0];
  } finally {
    stopListening?.();
  }
}
