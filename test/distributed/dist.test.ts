/**
 * `dist` on loopback with Gloo: two of our processes in one group, then one of ours and one PyTorch
 * `torch.distributed` process in one group (the same engine and wire format: c10d's TCPStore and
 * ProcessGroupGloo, keyed as PyTorch's default group). Each rank is a child process, bounded in time.
 */
import * as path from 'node:path';
import * as dist from '../../ts/distributed/index';
import { findPython } from '../helpers/python';
import { freePort, lastJson as result, run } from '../helpers/processes';

const lib = path.resolve(__dirname, '..', '..', 'lib', 'index.js');

// One of our ranks: the collectives below, their results as one JSON line.
const ourRank = (port: number, rank: number) => `
const { dist, torch } = require(${JSON.stringify(lib)});
const f = (a) => torch.tensor(Float32Array.from(a), [a.length]);
const v = (t) => Array.from(t.toTypedArray());
(async () => {
  await dist.initProcessGroup({ backend: 'gloo', initMethod: 'tcp://127.0.0.1:${port}', rank: ${rank}, worldSize: 2, timeoutMs: 30000 });
  const r = dist.getRank();
  const sum = f([r + 1, 10 * (r + 1)]); await dist.allReduce(sum);
  const max = f([r + 1, 5 - r]); await dist.allReduce(max, 'max');
  const avg = f([r + 1]); await dist.allReduce(avg, 'avg');
  const b = f([r === 0 ? 7 : -1, r === 0 ? 8 : -1]); await dist.broadcast(b, 0);
  const g = await dist.allGather(f([r * 2.5, r]));
  await dist.barrier();
  console.log(JSON.stringify({ rank: r, world: dist.getWorldSize(), sum: v(sum), max: v(max), avg: v(avg), b: v(b), g: g.map(v) }));
  dist.destroyProcessGroup();
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

// PyTorch's rank 1, doing what ourRank does (Gloo has no AVG in PyTorch either: as DDP and our 'avg',
// each rank divides by the world size, then the ranks sum).
const pyRank = (port: number) => `
import json, torch, torch.distributed as dist
dist.init_process_group('gloo', init_method='tcp://127.0.0.1:${port}', rank=1, world_size=2)
r = dist.get_rank()
s = torch.tensor([r + 1.0, 10.0 * (r + 1)]); dist.all_reduce(s)
m = torch.tensor([r + 1.0, 5.0 - r]); dist.all_reduce(m, op=dist.ReduceOp.MAX)
a = torch.tensor([r + 1.0]) / 2; dist.all_reduce(a)
b = torch.tensor([-1.0, -1.0]); dist.broadcast(b, 0)
g = [torch.empty(2) for _ in range(2)]; dist.all_gather(g, torch.tensor([r * 2.5, float(r)]))
dist.barrier()
print(json.dumps({'rank': r, 'world': dist.get_world_size(), 'sum': s.tolist(), 'max': m.tolist(), 'avg': a.tolist(), 'b': b.tolist(), 'g': [t.tolist() for t in g]}))
dist.destroy_process_group()
`;

const want = (rank: number) => ({
  rank,
  world: 2,
  sum: [3, 30],
  max: [2, 5],
  avg: [1.5],
  b: [7, 8],
  g: [
    [0, 0],
    [2.5, 1],
  ],
});

describe('dist (c10d Gloo on loopback)', () => {
  test('two ranks: allReduce (sum, max, avg), broadcast, allGather and barrier give what PyTorch gives', async () => {
    const port = await freePort();
    const [a, b] = await Promise.all([0, 1].map((rank) => run(process.execPath, ['-e', ourRank(port, rank)])));
    expect(result(a)).toEqual(want(0));
    expect(result(b)).toEqual(want(1));
  }, 90_000);

  const py = findPython(['torch']);
  (py ? test : test.skip)(
    'one group with a PyTorch torch.distributed process: the same engine and wire format',
    async () => {
      const port = await freePort();
      const [a, b] = await Promise.all([run(process.execPath, ['-e', ourRank(port, 0)]), run(py!, ['-c', pyRank(port)])]);
      expect(result(a)).toEqual(want(0));
      expect(result(b)).toEqual(want(1));
    },
    90_000,
  );

  test('bad options are errors naming the value; an unreachable store fails after the timeout, naming host and port', async () => {
    await expect(dist.initProcessGroup({ backend: 'mpi' as 'gloo', initMethod: 'tcp://127.0.0.1:1' })).rejects.toThrow(
      new TypeError("initProcessGroup: backend: expected 'gloo' or 'nccl', got \"mpi\""),
    );
    await expect(dist.initProcessGroup({ backend: 'gloo', initMethod: 'tcp://127.0.0.1:29400', rank: 2, worldSize: 2 })).rejects.toThrow(
      new RangeError('initProcessGroup: rank: expected an integer from 0 to 1, got 2'),
    );
    await expect(dist.initProcessGroup({ backend: 'gloo', initMethod: 'udp://x:1', rank: 0, worldSize: 1 })).rejects.toThrow(
      new TypeError(`initProcessGroup: initMethod: expected 'env://' or 'tcp://host:port', got "udp://x:1"`),
    );
    await expect(dist.initProcessGroup({ backend: 'gloo', rank: 0, worldSize: 1, timeout: 5 } as never)).rejects.toThrow(
      'initProcessGroup: unknown option "timeout": did you mean timeoutMs? (options: backend, initMethod, rank, worldSize, timeoutMs, device)',
    );
    expect(() => dist.getRank()).toThrow('getRank: no process group (initProcessGroup() first)');
    const port = await freePort();
    const t0 = Date.now();
    const r = await run(process.execPath, [
      '-e',
      `require(${JSON.stringify(lib)}).dist.initProcessGroup({ backend: 'gloo', initMethod: 'tcp://127.0.0.1:${port}', rank: 1, worldSize: 2, timeoutMs: 3000 }).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); });`,
    ]);
    expect(r.code).toBe(3);
    expect(r.err).toContain(`cannot reach the store at 127.0.0.1:${port} (rank 1 of 2, timeout 3000 ms)`);
    // c10d's own retry logs (with C++ frames) stay quiet: the error says what failed
    expect(r.err).not.toMatch(/frame #|Exception raised from/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  }, 60_000);
});
