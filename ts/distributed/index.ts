/**
 * `dist`, after `torch.distributed`: one process group per process on LibTorch's own c10d (TCPStore for
 * the rendezvous, ProcessGroupGloo or ProcessGroupNCCL for the collectives), keyed as torch.distributed's
 * default group, so our ranks and PyTorch's can share a group. Joining and every collective complete off
 * the event loop.
 */
import { loadAddon, type NativeDistGroup } from '../native/addon';
import { type Device } from '../tensor/dtype';
import { readOptions } from '../util/options';
import { Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

export type Backend = 'gloo' | 'nccl';
const BACKENDS: readonly Backend[] = ['gloo', 'nccl'];
const INIT_KEYS = ['backend', 'initMethod', 'rank', 'worldSize', 'timeoutMs', 'device'] as const;
const INIT_METHOD_FORM = "'env://' or 'tcp://host:port'";
const MAX_WORLD = 1 << 20;
export type ReduceOp = 'sum' | 'product' | 'min' | 'max' | 'avg';
const REDUCE_OPS: readonly string[] = ['sum', 'product', 'min', 'max', 'avg'];

export interface InitOptions {
  /**
   * 'gloo' (default: CPU tensors) or 'nccl' (CUDA tensors on this rank's GPU; needs a CUDA LibTorch with
   * NCCL, as PyPI's Linux torch is, and a GPU).
   */
  backend?: Backend;
  /** 'env://' (default: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, as torchrun sets them) or 'tcp://host:port'. */
  initMethod?: string;
  rank?: number;
  worldSize?: number;
  /** How long joining and each collective may take (default 30 minutes, as PyTorch's). */
  timeoutMs?: number;
  /**
   * NCCL: this rank's GPU, 'cuda:N' (default: cuda:LOCAL_RANK, as torchrun and --nproc set it; without
   * LOCAL_RANK, cuda:(rank modulo the GPUs), as PyTorch guesses). Joining makes it this process's current
   * CUDA device (torch.cuda.set_device), so 'cuda' means it afterwards. Gloo: 'cpu' only.
   */
  device?: Device;
}

/** Whether backend 'nccl' is there (a CUDA LibTorch with NCCL and an addon built with it), as torch.distributed.is_nccl_available(). */
export function isNcclAvailable(): boolean {
  return loadAddon().info().ncclAvailable;
}

export class DistError extends Error {
  override name = 'DistError';
}

/** A process group: what GanStep and the Trainer take to train data-parallel (`dist.group.WORLD`). */
export class ProcessGroup {
  /** @internal */
  constructor(readonly _native: NativeDistGroup) {}
  get rank(): number {
    return this._native.rank();
  }
  get worldSize(): number {
    return this._native.worldSize();
  }
  /** 'gloo' or 'nccl'. */
  get backend(): Backend {
    return this._native.backend();
  }
  /** Where the collectives' tensors must be: 'cpu' (Gloo) or this rank's GPU, 'cuda:N' (NCCL). */
  get device(): Device {
    return this._native.device();
  }
}

let group: NativeDistGroup | null = null;
let world: ProcessGroup | null = null;

/** As torch.distributed.group: `group.WORLD` is the group initProcessGroup joined. */
const groups = {
  get WORLD(): ProcessGroup {
    if (!world) throw new DistError('dist.group.WORLD: no process group (initProcessGroup() first)');
    return world;
  },
};

const env = (name: string): string | undefined => process.env[name];

function intFrom(what: string, v: unknown, lo: number, hi: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi)
    throw new DistError(`initProcessGroup: ${what} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`);
  return n;
}

/** Joins (rank 0: serves) the group; resolves once every rank has joined. */
export async function initProcessGroup(options: InitOptions): Promise<void> {
  const o = readOptions('initProcessGroup', options, INIT_KEYS, { form: `an options object { ${INIT_KEYS.map((k) => `${k}?`).join(', ')} }` });
  if (group) throw new DistError('initProcessGroup: this process is already in a group (destroyProcessGroup() first)');
  const backend = o.oneOfOr('backend', BACKENDS, 'gloo');
  const method = o.stringOr('initMethod', 'env://', INIT_METHOD_FORM);
  let host: string | undefined;
  let port: unknown;
  if (method === 'env://') {
    host = env('MASTER_ADDR');
    port = env('MASTER_PORT');
    if (!host || port === undefined) throw new DistError('initProcessGroup: env:// needs MASTER_ADDR and MASTER_PORT (torchrun sets them)');
  } else {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)$/.exec(method);
    if (!m) throw o.error('initMethod', INIT_METHOD_FORM);
    host = m[1].replace(/^\[|\]$/g, '');
    port = m[2];
  }
  // an option is checked as an option; a value from the environment (torchrun's) names its variable
  const worldSize = o.has('worldSize') ? o.integer('worldSize', { min: 1, max: MAX_WORLD }) : intFrom('WORLD_SIZE', env('WORLD_SIZE'), 1, MAX_WORLD);
  const rank = o.has('rank') ? o.integer('rank', { min: 0, max: worldSize - 1 }) : intFrom('RANK', env('RANK'), 0, worldSize - 1);
  const timeoutMs = o.integerOr('timeoutMs', 30 * 60 * 1000, { min: 1, max: 2 ** 40 });
  const device = o.has('device') ? o.device('device') : undefined;
  const agentStore = method === 'env://' && ['true', '1'].includes((env('TORCHELASTIC_USE_AGENT_STORE') ?? '').toLowerCase());
  const dev = backend === 'nccl' ? ncclDevice(device, rank) : glooDevice(device);
  const connect = loadAddon().NativeDistGroup.connect;
  group = await connect({ host, port: intFrom('port', port, 1, 65535), rank, worldSize, timeoutMs, agentStore, backend, device: dev });
  world = new ProcessGroup(group);
}

/** An NCCL rank's GPU: the option, else cuda:LOCAL_RANK, else cuda:(rank modulo the GPUs). The addon checks it is usable. */
function ncclDevice(device: unknown, rank: number): Device {
  if (device !== undefined && (typeof device !== 'string' || !/^cuda(:\d+)?$/.test(device)))
    throw new DistError(`initProcessGroup: backend 'nccl' runs on a GPU: device must be 'cuda' or 'cuda:N', got ${JSON.stringify(device)}`);
  if (device !== undefined && device !== 'cuda') return device as Device;
  const local = env('LOCAL_RANK');
  if (local !== undefined) return `cuda:${intFrom('LOCAL_RANK', local, 0, 1 << 20)}`;
  const n = torch.cuda.deviceCount();
  return `cuda:${n > 0 ? rank % n : 0}`;
}

function glooDevice(device: unknown): Device {
  if (device === undefined || device === 'cpu') return 'cpu';
  throw new DistError(
    `initProcessGroup: backend 'gloo' runs on the CPU here: device must be 'cpu', got ${JSON.stringify(device)} (backend 'nccl' takes CUDA tensors)`,
  );
}

function live(who: string, pg?: ProcessGroup): NativeDistGroup {
  if (pg !== undefined) {
    if (!(pg instanceof ProcessGroup)) throw new TypeError(`${who}: group: expected a dist.ProcessGroup (dist.group.WORLD), got ${typeof pg}`);
    return pg._native;
  }
  if (!group) throw new DistError(`${who}: no process group (initProcessGroup() first)`);
  return group;
}

function tensorArg(who: string, t: unknown): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`${who}: expected a Tensor, got ${typeof t}`);
  return t;
}

export const isInitialized = (): boolean => group !== null;
export const getRank = (): number => live('getRank').rank();
export const getWorldSize = (): number => live('getWorldSize').worldSize();

// Each collective runs over `group` (default: the group initProcessGroup joined), as torch.distributed's.

/** Reduces `t` across ranks, in place (op 'sum' by default). */
export async function allReduce(t: Tensor, op: ReduceOp = 'sum', group?: ProcessGroup): Promise<void> {
  if (!REDUCE_OPS.includes(op)) throw new DistError(`allReduce: op must be one of ${REDUCE_OPS.join(', ')}, got ${JSON.stringify(op)}`);
  await live('allReduce', group).allReduce(tensorArg('allReduce', t)._native, op);
}

/** Overwrites `t` on every rank with rank src's. */
export async function broadcast(t: Tensor, src: number, group?: ProcessGroup): Promise<void> {
  await live('broadcast', group).broadcast(tensorArg('broadcast', t)._native, src);
}

/** Every rank's `t`, in rank order. */
export async function allGather(t: Tensor, group?: ProcessGroup): Promise<Tensor[]> {
  const out = await live('allGather', group).allGather(tensorArg('allGather', t)._native);
  return out.map((n) => new Tensor(n));
}

export async function barrier(group?: ProcessGroup): Promise<void> {
  await live('barrier', group).barrier();
}

/** Leaves the group (collectives in flight complete first). */
export function destroyProcessGroup(): void {
  live('destroyProcessGroup').destroy();
  group = null;
  world = null;
}

export { groups as group };
