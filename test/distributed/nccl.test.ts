/**
 * Backend 'nccl'. Where it cannot run (no GPU; a LibTorch or addon without NCCL), joining fails at once
 * with the reason, before any connection; backend and device options are checked; the CLI picks the
 * backend from the device. On a GPU (skipped without one; for the device check, in scripts/device/check.sh's test list): a
 * one-rank NCCL group's collectives, and a one-rank NCCL data-parallel Trainer epoch equal to the same
 * epoch trained alone.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { distBackendFor, parseTrainArgs } from '../../ts/cli/commands/train-args';
import * as dist from '../../ts/distributed/index';
import { loadAddon, type NativeInfo } from '../../ts/native/addon';
import * as torch from '../../ts/tensor/torch';
import { builtLib } from '../helpers/lib';
import { freePort, lastJson, run } from '../helpers/processes';

// runtime.cc's NCCL fields of info() (ts/native/addon.ts does not declare them yet)
const info = loadAddon().info() as NativeInfo & { ncclAvailable: boolean; ncclVersion: string | null; ncclMissing: string };
const gpu = torch.cuda.isAvailable();
const ncclGpu = gpu && info.ncclAvailable;
const script = path.join(__dirname, 'nccl-rank.cjs');

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** What joining an NCCL group says on this machine when it cannot form one. */
const refusal = (): RegExp =>
  info.ncclAvailable
    ? /initProcessGroup: backend 'nccl' needs a GPU: CUDA is not available: [^\n]+; use backend 'gloo' \(CPU\)/
    : new RegExp(escapeRegExp(`initProcessGroup: backend 'nccl' needs a CUDA LibTorch built with NCCL: ${info.ncclMissing}`));

describe("dist backend 'nccl'", () => {
  test('info() says whether NCCL is there: its version, or what is missing', () => {
    expect(typeof info.ncclAvailable).toBe('boolean');
    expect(dist.isNcclAvailable()).toBe(info.ncclAvailable);
    if (info.ncclAvailable) {
      expect(info.ncclMissing).toBe('');
      expect(info.ncclVersion).toMatch(/^\d+\.\d+\.\d+/);
    } else {
      expect(info.ncclMissing.length).toBeGreaterThan(10);
      expect(info.ncclVersion).toBeNull();
    }
    // a CPU-only LibTorch can only say so
    if (!info.cudaBuild) expect(info.ncclMissing).toMatch(/was built without CUDA/);
  });

  (ncclGpu ? test.skip : test)('without a GPU or NCCL, joining fails at once with the reason, before any connection', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const joining = dist.initProcessGroup({ backend: 'nccl', initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 1, timeoutMs: 60_000 });
    await expect(joining).rejects.toThrow(refusal());
    expect(Date.now() - t0).toBeLessThan(10_000); // no store was served, nothing waited for
    expect(dist.isInitialized()).toBe(false);
  });

  test('backend and device options are checked, naming the value and what was expected', async () => {
    const at = { initMethod: 'tcp://127.0.0.1:1', rank: 0, worldSize: 1 };
    await expect(dist.initProcessGroup({ ...at, backend: 'NCCL' as 'nccl' })).rejects.toThrow(
      new TypeError("initProcessGroup: backend: expected 'gloo' or 'nccl', got \"NCCL\" (did you mean 'nccl'?)"),
    );
    await expect(dist.initProcessGroup({ ...at, backend: 'nccl', device: 'cpu' })).rejects.toThrow(
      "initProcessGroup: backend 'nccl' runs on a GPU: device must be 'cuda' or 'cuda:N', got \"cpu\"",
    );
    await expect(dist.initProcessGroup({ ...at, backend: 'gloo', device: 'cuda:0' })).rejects.toThrow(
      "initProcessGroup: backend 'gloo' runs on the CPU here: device must be 'cpu', got \"cuda:0\" (backend 'nccl' takes CUDA tensors)",
    );
    const saved = process.env.LOCAL_RANK;
    process.env.LOCAL_RANK = 'one';
    try {
      await expect(dist.initProcessGroup({ ...at, backend: 'nccl' })).rejects.toThrow(
        'initProcessGroup: LOCAL_RANK must be an integer in [0, 1048576], got "one"',
      );
    } finally {
      if (saved === undefined) delete process.env.LOCAL_RANK;
      else process.env.LOCAL_RANK = saved;
    }
    expect(dist.isInitialized()).toBe(false);
  });

  test('train: --dist-backend is gloo or nccl; without it the device picks (NCCL for CUDA, Gloo for the CPU)', () => {
    expect(() => parseTrainArgs(['--dist-backend', 'mpi'])).toThrow('--dist-backend: expected one of gloo, nccl, got "mpi"');
    const parsed = parseTrainArgs(['--dist-backend', 'nccl', '--device', 'cpu']);
    expect(parsed !== 'help' && parsed.distBackend).toBe('nccl');
    expect(distBackendFor({ device: 'cpu' }, undefined)).toEqual({ backend: 'gloo', picked: true });
    expect(distBackendFor({ device: 'cuda' }, undefined)).toEqual({ backend: 'nccl', picked: true });
    expect(distBackendFor({ device: 'cuda' }, 'gloo')).toEqual({ backend: 'gloo', picked: false });
    expect(distBackendFor({}, undefined)).toEqual({ backend: gpu ? 'nccl' : 'gloo', picked: true });
  });

  (ncclGpu ? test.skip : test)(
    'train --nproc 2 --device cuda: each rank joins over NCCL and fails at once with the reason',
    async () => {
      const save = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-nccl-'));
      const cli = builtLib(path.join('lib', 'cli', 'main.js'));
      const r = await run(process.execPath, [cli, 'train', '--preset', 'vanilla', '--device', 'cuda', '--nproc', '2', '--save-dir', save, '--verbose', '0'], {
        timeoutMs: 60_000,
      });
      expect(r.code).not.toBe(0);
      expect(r.signal).toBeNull();
      expect(r.err).toMatch(refusal());
      expect(fs.readdirSync(save)).toEqual([]);
    },
    90_000,
  );
});

(ncclGpu ? describe : describe.skip)("dist backend 'nccl' on a GPU (one rank)", () => {
  const lib = builtLib();

  test('allReduce (sum, max, avg), broadcast, allGather and barrier on the group GPU; a CPU tensor is refused', async () => {
    const r = await run(process.execPath, [script, lib, 'collectives', String(await freePort())], { timeoutMs: 120_000 });
    expect({ code: r.code, err: r.err }).toMatchObject({ code: 0 });
    expect(lastJson(r)).toEqual({
      backend: 'nccl',
      device: 'cuda:0',
      tensorDevice: 'cuda:0',
      sum: [1, 10],
      max: [3, -2],
      avg: [5],
      b: [7, 8],
      g: [[2.5, 1]],
      gDevice: 'cuda:0',
      cpuError: "allReduce: backend 'nccl' takes tensors on the group's GPU cuda:0, got one on cpu (move it with .to('cuda:0'))",
    });
  }, 150_000);

  test('a one-rank NCCL data-parallel Trainer epoch equals the same epoch trained alone', async () => {
    const save = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-nccl-'));
    const r = await run(process.execPath, [script, lib, 'trainer', String(await freePort()), save], { timeoutMs: 240_000 });
    expect({ code: r.code, err: r.err }).toMatchObject({ code: 0 });
    type Run = { losses: string[]; weights: number[]; device: string };
    const out = lastJson<{ alone: Run; nccl: Run; rng: { cuda: number; ranks: number } }>(r);
    expect(out.nccl.device).toBe('cuda:0');
    expect(out.alone.losses).toHaveLength(6);
    const rows = (x: Run) => x.losses.map((l) => l.split(',').map(Number));
    const [a, b] = [rows(out.alone), rows(out.nccl)];
    // One rank: its averages are its own gradients (divided by 1, summed over one rank), so the runs
    // compute the same values; the bound only allows for cuBLAS choosing other kernels between runs.
    for (let s = 0; s < a.length; s++) for (let k = 0; k < a[s].length; k++) expect(Math.abs(a[s][k] - b[s][k])).toBeLessThanOrEqual(1e-6);
    expect(out.nccl.weights.length).toBe(out.alone.weights.length);
    expect(out.nccl.weights.reduce((m, v, i) => Math.max(m, Math.abs(v - out.alone.weights[i])), 0)).toBeLessThanOrEqual(1e-6);
    // the checkpoint's RNG states went through the GPU gather: the CPU's and the GPU's
    expect(out.rng.ranks).toBe(1);
    expect(out.rng.cuda).toBeGreaterThan(0);
  }, 300_000);
});
