/**
 * What a Trainer does differently as one rank of a data-parallel run (TrainerOptions.processGroup):
 * every rank loads the data and builds the models, GanStep averages the gradients (see GanStepOptions),
 * rank 0 alone writes the run folder. Here: the start checks and agreements between the ranks, each
 * rank's noise stream, and the gathering of every rank's RNG state into rank 0's checkpoints.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as dist from '../distributed/index';
import { type ProcessGroup } from '../distributed/index';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type ResolvedConfig } from '../config/config';
import { type RngStates } from '../store/checkpoint';

export class DataParallelError extends Error {
  override name = 'DataParallelError';
}

/** The seed of rank `rank`'s noise and dropout stream in a run seeded `seed` (rank 0 keeps `seed` itself). */
export function rankSeed(seed: number, rank: number): number {
  if (rank === 0) return seed;
  return createHash('sha256').update(`libtorch-gan:rank:${seed}:${rank}`).digest().readUInt32LE(0) & 0x7fffffff;
}

/** This machine, as the ranks compare it: host name and boot id (two containers on one host differ in neither). */
function hostKey(): Uint8Array {
  let boot = '';
  try {
    boot = fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // not Linux: the host name alone
  }
  return Uint8Array.from(createHash('sha256').update(`${os.hostname()}\0${boot}`).digest().subarray(0, 16));
}

/**
 * Intra-op threads of one rank when the config sets none: this machine's cores shared among the ranks
 * that run on it, counted by comparing host keys across the group (a collective). Not torchrun's
 * LOCAL_WORLD_SIZE: two agents started on one machine (`--nnodes 2`) each say 1, and their ranks would
 * take every core each, run their reductions in another order than `--nproc 2`'s, and differ in the
 * last bits. Counting makes the thread count, and so the arithmetic, the same however the ranks were launched.
 */
export async function threadsPerRank(pg: ProcessGroup): Promise<number> {
  const mine = onGroupDevice(pg, torch.tensor(hostKey(), [16]));
  const all = await dist.allGather(mine, pg);
  try {
    const me = Buffer.from(mine.toTypedArray() as Uint8Array);
    const here = all.filter((t) => me.equals(Buffer.from(t.toTypedArray() as Uint8Array))).length;
    return Math.max(1, Math.floor(os.availableParallelism() / Math.max(1, here)));
  } finally {
    mine.dispose();
    for (const t of all) t.dispose();
  }
}

/** `t` where the group's collectives take it: on an NCCL group's GPU (`t` moved there and disposed), else `t` itself. */
function onGroupDevice(pg: ProcessGroup, t: Tensor): Tensor {
  if (pg.backend !== 'nccl') return t;
  try {
    return t.to(pg.device);
  } finally {
    t.dispose();
  }
}

/**
 * Checks that the run's device suits the group's backend, before data and models are loaded: Gloo
 * averages CPU tensors, NCCL CUDA tensors on the rank's GPU.
 */
export function checkGroupDevice(pg: ProcessGroup, device: 'cpu' | 'cuda'): void {
  if (device === 'cuda' && pg.backend !== 'nccl')
    throw new DataParallelError(
      `data-parallel training on CUDA needs backend 'nccl'; this group's is '${pg.backend}' (initProcessGroup({ backend: 'nccl' }), or device 'cpu')`,
    );
  if (device === 'cpu' && pg.backend === 'nccl')
    throw new DataParallelError(`backend 'nccl' averages CUDA tensors, but this run's device is 'cpu': use backend 'gloo', or device 'cuda'`);
}

/** Rank 0's numbers on every rank (exact for integers below 2^53). */
async function fromRank0(pg: ProcessGroup, values: number[]): Promise<number[]> {
  const t = onGroupDevice(pg, torch.tensor(Float64Array.from(values), [values.length]));
  try {
    await dist.broadcast(t, 0, pg);
    return Array.from(t.toTypedArray() as Float64Array);
  } finally {
    t.dispose();
  }
}

/**
 * Checks, before any training, that every rank runs the same config on the same number of images (a
 * rank started with other flags would otherwise train a different model into the averages), and
 * returns rank 0's run-level numbers (its shuffle seed, random when the run is not seeded; its run folder's number).
 */
export async function agreeAtStart(pg: ProcessGroup, cfg: ResolvedConfig, images: number, numbers: number[]): Promise<number[]> {
  checkGroupDevice(pg, cfg.device);
  const digest = createHash('sha256')
    .update(JSON.stringify({ config: { ...cfg, threads: undefined, verbose: undefined }, images }))
    .digest();
  const mine = onGroupDevice(pg, torch.tensor(Uint8Array.from(digest), [digest.length]));
  const all = await dist.allGather(mine, pg);
  try {
    const hex = all.map((t) => Buffer.from(t.toTypedArray() as Uint8Array).toString('hex'));
    const other = hex.findIndex((h) => h !== hex[0]);
    if (other > 0) {
      throw new DataParallelError(
        `data-parallel run: rank ${other}'s config or dataset differs from rank 0's (config hash ${hex[other].slice(0, 12)} vs ${hex[0].slice(0, 12)}); start every rank with the same options and data`,
      );
    }
  } finally {
    mine.dispose();
    for (const t of all) t.dispose();
  }
  return fromRank0(pg, numbers);
}

/**
 * Every rank's generator states, in rank order, on the CPU: the CPU generator's, and with an NCCL group
 * also each rank's own GPU's (its noise and dropout come from there). A collective: every rank calls it
 * at the same point.
 */
export async function gatherRngStates(pg: ProcessGroup): Promise<{ cpu: Tensor[]; cuda?: Tensor[] }> {
  const cpu = await gatherState(pg, torch.getRngState('cpu'));
  if (pg.backend !== 'nccl') return { cpu };
  try {
    return { cpu, cuda: await gatherState(pg, torch.getRngState(pg.device)) };
  } catch (e) {
    for (const t of cpu) t.dispose();
    throw e;
  }
}

/** `state` of every rank, on the CPU (`state` is disposed). */
async function gatherState(pg: ProcessGroup, state: Tensor): Promise<Tensor[]> {
  const mine = onGroupDevice(pg, state);
  try {
    const all = await dist.allGather(mine, pg);
    if (pg.backend !== 'nccl') return all;
    return all.map((t) => {
      try {
        return t.to('cpu');
      } finally {
        t.dispose();
      }
    });
  } finally {
    mine.dispose();
  }
}

/**
 * `write` given every rank's RNG states (gathered: a collective every rank takes part in), freed after:
 * the CPU's, and with NCCL each rank's GPU's.
 */
export async function withRankRngStates<T>(pg: ProcessGroup, write: (rng: RngStates) => T): Promise<T> {
  const { cpu, cuda } = await gatherRngStates(pg);
  try {
    return write({ cpu: cpu[0], ranks: cpu, ...(cuda ? { cuda: cuda[0], cudaRanks: cuda } : {}) });
  } finally {
    for (const t of [...cpu, ...(cuda ?? [])]) t.dispose();
  }
}
