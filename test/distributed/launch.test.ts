/**
 * Data-parallel `libtorch-gan train` on loopback (Gloo, 2 ranks): launched by torchrun it writes one
 * run folder and resumes, giving exactly what `--nproc 2` gives uninterrupted; a rank killed mid-run
 * makes the other fail at once with a clear error, the last checkpoint intact; ranks started with
 * different options refuse to train.
 */
import { type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadCheckpoint } from '../../ts/store/checkpoint';
import { findPython } from '../helpers/python';
import { freePort, run } from '../helpers/processes';

const cli = path.resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-dp-'));
const train = ['train', '--preset', 'vanilla', '--limit', '1000', '--seed', '3', '--sample-every', '0', '--verbose', '0'];
const lossRows = (dir: string) => fs.readFileSync(path.join(dir, 'losses.csv'), 'utf8').trim().split('\n').slice(1);
const rankEnv = (rank: number, port: number) => ({
  MASTER_ADDR: '127.0.0.1',
  MASTER_PORT: String(port),
  RANK: String(rank),
  WORLD_SIZE: '2',
  LOCAL_WORLD_SIZE: '2',
});

describe('data-parallel CLI (Gloo, 2 ranks)', () => {
  const py = findPython(['torch']);
  (py ? test : test.skip)(
    'torchrun --standalone --nproc-per-node 2: one run folder, resumed, equal to --nproc 2 uninterrupted; two agents (--nnodes 2) likewise',
    async () => {
      const save = tmp();
      const torchrun = (args: string[]) =>
        run(py!, ['-m', 'torch.distributed.run', '--no-python', '--standalone', '--nproc-per-node', '2', process.execPath, cli, ...args], {
          timeoutMs: 120_000,
        });
      const first = await torchrun([...train, '--epochs', '1', '--save-dir', save]);
      expect({ code: first.code, err: first.err }).toMatchObject({ code: 0 });
      expect(fs.readdirSync(save)).toEqual(['run-1']);
      const runDir = path.join(save, 'run-1');
      const info = JSON.parse(fs.readFileSync(path.join(runDir, 'config.json'), 'utf8'));
      expect(info.distributed).toEqual({ backend: 'gloo', worldSize: 2 });
      // each rank's shard: 500 images, 100 per step (the preset's batch, per rank)
      expect(lossRows(runDir)).toHaveLength(5);
      const resumed = await torchrun(['train', '--resume', runDir, '--epochs', '2', '--verbose', '0']);
      expect(resumed.code).toBe(0);
      expect(fs.readdirSync(save)).toEqual(['run-1']);

      const straight = tmp();
      const both = await run(process.execPath, [cli, ...train, '--epochs', '2', '--save-dir', straight, '--nproc', '2'], { timeoutMs: 120_000 });
      expect(both.code).toBe(0);
      const other = path.join(straight, 'run-1');
      expect(lossRows(runDir)).toHaveLength(10);
      expect(lossRows(runDir)).toEqual(lossRows(other));
      const a = loadCheckpoint(runDir);
      const b = loadCheckpoint(other);
      expect(a.state.worldSize).toBe(2);
      expect(a.rng.ranks).toHaveLength(2);
      const values = (t: { toTypedArray(): unknown }) => Array.from(t.toTypedArray() as Float32Array);
      for (const k of Object.keys(b.generator)) expect(values(a.generator[k])).toEqual(values(b.generator[k]));

      // two "machines": two torchrun agents meeting at a c10d rendezvous endpoint, one rank each
      const nodes = tmp();
      const endpoint = `127.0.0.1:${await freePort()}`;
      const rdzv = ['--nnodes', '2', '--nproc-per-node', '1', '--rdzv-backend', 'c10d', '--rdzv-endpoint', endpoint, '--rdzv-id', 'ltg-test'];
      const agent = () =>
        run(py!, ['-m', 'torch.distributed.run', '--no-python', ...rdzv, process.execPath, cli, ...train, '--epochs', '1', '--save-dir', nodes], {
          timeoutMs: 120_000,
        });
      const twoNodes = await Promise.all([agent(), agent()]);
      for (const r of twoNodes) expect({ code: r.code, err: r.err }).toMatchObject({ code: 0 });
      expect(fs.readdirSync(nodes)).toEqual(['run-1']);
      // The agents' ranks take the same thread count as --nproc 2's (cores / ranks on this machine,
      // counted across the group), so their steps run the same arithmetic. The rows are still compared
      // within a stated tolerance, not bit for bit: the two launches are scheduled by different
      // processes, and the test must not hinge on two launchers giving bit-identical float schedules.
      const rows = (dir: string) => lossRows(dir).map((r) => r.split(',').map(Number));
      const agents = rows(path.join(nodes, 'run-1'));
      const ref = rows(other).slice(0, 5);
      expect(agents.map((r) => r.length)).toEqual(ref.map((r) => r.length));
      const worst = Math.max(...agents.flatMap((r, i) => r.map((v, j) => Math.abs(v - ref[i][j]))));
      expect(worst).toBeLessThan(1e-5);
    },
    300_000,
  );

  test('a rank killed mid-run: the other fails within seconds naming the failure, the last checkpoint intact', async () => {
    const save = tmp();
    const port = await freePort();
    const args = [cli, ...train, '--epochs', '400', '--save-every', '1', '--save-dir', save, '--dist-timeout', '60'];
    let victim: ChildProcess | undefined;
    const rank1 = run(process.execPath, args, { env: rankEnv(1, port), timeoutMs: 120_000, onSpawn: (p) => (victim = p) });
    const rank0 = run(process.execPath, args, { env: rankEnv(0, port), timeoutMs: 120_000 });
    const trainerJson = path.join(save, 'run-1', 'trainer.json');
    const deadline = Date.now() + 90_000;
    while (!fs.existsSync(trainerJson) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(fs.existsSync(trainerJson)).toBe(true);
    await new Promise((r) => setTimeout(r, 500)); // inside a later epoch
    const killedAt = Date.now();
    victim!.kill('SIGKILL');
    const [r0, r1] = await Promise.all([rank0, rank1]);
    expect(r1.signal).toBe('SIGKILL');
    expect(r0.code).toBe(1);
    expect(Date.now() - killedAt).toBeLessThan(20_000);
    expect(r0.err).toMatch(/data-parallel step \d+: averaging the (discriminator|generator)'s gradients across 2 ranks failed on rank 0/);
    const ckpt = loadCheckpoint(path.join(save, 'run-1'));
    expect(ckpt.state.epoch).toBeGreaterThanOrEqual(1);
    expect(ckpt.state.worldSize).toBe(2);
  }, 180_000);

  test('Ctrl-C reaches both ranks of --nproc 2: they stop at one step, rank 0 checkpoints, the resume command names --nproc 2', async () => {
    const save = tmp();
    let launcher: ChildProcess | undefined;
    const done = run(process.execPath, [cli, ...train, '--epochs', '400', '--save-every', '0', '--save-dir', save, '--nproc', '2'], {
      timeoutMs: 120_000,
      detached: true, // its own process group, as a terminal's foreground job: Ctrl-C signals every process in it
      onSpawn: (p) => (launcher = p),
    });
    const runDir = path.join(save, 'run-1');
    const deadline = Date.now() + 90_000;
    while (!(fs.existsSync(path.join(runDir, 'losses.csv')) && lossRows(runDir).length >= 5) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    process.kill(-launcher!.pid!, 'SIGINT');
    const r = await done;
    expect({ code: r.code, err: r.err }).toMatchObject({ code: 130 });
    expect(r.err).not.toContain('[rank 1]');
    expect(r.err).toContain(`Resume with: libtorch-gan train --resume ${runDir} --nproc 2`);
    const ckpt = loadCheckpoint(runDir);
    expect(ckpt.state.globalStep).toBe(lossRows(runDir).length);
    expect(ckpt.state.globalStep).toBeGreaterThanOrEqual(5);
    expect(ckpt.rng.ranks).toHaveLength(2);
  }, 120_000);

  test('ranks started with different options refuse to train, naming the rank', async () => {
    const port = await freePort();
    const save = tmp();
    const base = [cli, ...train, '--epochs', '1', '--save-dir', save, '--dist-timeout', '30'];
    const [r0, r1] = await Promise.all([
      run(process.execPath, base, { env: rankEnv(0, port) }),
      run(process.execPath, [...base, '--lr', '0.001'], { env: rankEnv(1, port) }),
    ]);
    for (const r of [r0, r1]) {
      expect(r.code).toBe(1);
      expect(r.err).toContain("rank 1's config or dataset differs from rank 0's");
    }
  }, 120_000);
});
