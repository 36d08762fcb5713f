/**
 * The bounds of a launch: a join or collective that cannot complete fails within its timeout (plus a
 * little) with an error naming host:port and the timeout; the CLI's error lines carry no C++ frames
 * unless --verbose 3 asks; --nproc is bounded by the cores unless --nproc-oversubscribe.
 */
import * as path from 'node:path';
import * as dist from '../../ts/distributed/index';
import { parseTrainArgs } from '../../ts/cli/commands/train-args';
import { nprocLimit } from '../../ts/cli/launch';
import { withoutNativeBacktrace } from '../../ts/cli/main';
import { builtLib } from '../helpers/lib';
import { freePort, run } from '../helpers/processes';

const cli = path.resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
const lib = path.resolve(__dirname, '..', '..', 'lib', 'index.js');
// A line of a C++ backtrace: c10's "frame #N:", an address, a shared object's "libx.so(" / ".so)".
const CPP_FRAME = /frame #\d|0x[0-9a-f]{6,}|\.so[()]|Exception raised from/;
const SLACK_MS = 3000;

beforeAll(() => {
  builtLib(path.join('lib', 'cli', 'main.js'));
}, 120_000);

describe('joining and collectives honour the timeout', () => {
  it('a rank whose store never answers fails within timeout + 3 s, naming host:port and the timeout', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 1, worldSize: 2, timeoutMs: 2000 }).then(
      () => null,
      (e: Error) => e,
    );
    const ms = Date.now() - t0;
    expect(err).not.toBeNull();
    expect(err!.message).toContain(`127.0.0.1:${port}`);
    expect(err!.message).toContain('2000 ms');
    expect(err!.message).not.toMatch(CPP_FRAME);
    expect(ms).toBeLessThan(2000 + SLACK_MS);
    expect(dist.isInitialized()).toBe(false);
  }, 30_000);

  it('rank 0 whose peer never joins fails within timeout + 3 s (store served, group never formed)', async () => {
    const port = await freePort();
    const t0 = Date.now();
    const err = await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 0, worldSize: 2, timeoutMs: 2000 }).then(
      () => null,
      (e: Error) => e,
    );
    const ms = Date.now() - t0;
    expect(err?.message).toMatch(new RegExp(`group did not form within the timeout of 2000 ms .*127\\.0\\.0\\.1:${port}`));
    expect(err!.message).not.toMatch(CPP_FRAME);
    expect(ms).toBeLessThan(2000 + SLACK_MS);
  }, 30_000);

  it('a collective the peer never joins fails within timeout + 3 s', async () => {
    const port = await freePort();
    // The peer (rank 0) joins, says so, then never calls a collective.
    const peer = `
const { dist } = require(${JSON.stringify(lib)});
console.log('starting');
dist.initProcessGroup({ initMethod: 'tcp://127.0.0.1:${port}', rank: 0, worldSize: 2, timeoutMs: 4000 })
  .then(() => { console.log('joined'); setTimeout(() => {}, 10000); }, (e) => { console.error(e.message); process.exit(1); });
`;
    let started!: () => void;
    const ready = new Promise<void>((r) => (started = r));
    const other = run(process.execPath, ['-e', peer], { timeoutMs: 30_000, onOut: (all) => all.includes('starting') && started() });
    await ready;
    // Both ranks join within 4 s (the peer is already waiting); each collective then gets 4 s.
    await dist.initProcessGroup({ initMethod: `tcp://127.0.0.1:${port}`, rank: 1, worldSize: 2, timeoutMs: 4000 });
    try {
      const t0 = Date.now();
      const err = await dist.barrier().then(
        () => null,
        (e: Error) => e,
      );
      expect(err).not.toBeNull();
      expect(err!.message).not.toMatch(CPP_FRAME);
      expect(Date.now() - t0).toBeLessThan(4000 + SLACK_MS);
    } finally {
      dist.destroyProcessGroup();
    }
    await other;
  }, 60_000);
});

describe('the CLI prints no C++ frames unless --verbose 3', () => {
  const lone = async (extra: string[]) => {
    const port = await freePort();
    const env = { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), RANK: '1', WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2' };
    return { port, r: await run(process.execPath, [cli, 'train', '--preset', 'vanilla', '--dist-timeout', '2', ...extra], { env, timeoutMs: 60_000 }) };
  };

  it('a join that times out: one error line naming host:port and the timeout, no frames', async () => {
    const { port, r } = await lone(['--verbose', '0']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(new RegExp(`^libtorch-gan: error: initProcessGroup: cannot reach the store at 127\\.0\\.0\\.1:${port} .*timeout 2000 ms`, 'm'));
    for (const line of r.err.split('\n')) expect(line).not.toMatch(CPP_FRAME);
  }, 60_000);

  it('a message that carries a C++ backtrace keeps it on nativeBacktrace, off the message', () => {
    const frames = 'Exception raised from f at a.cpp:1 (most recent call first):\nframe #0: c10::Error::Error() + 0x9d (0x7f2990f5c13d in libc10.so)';
    const e = withoutNativeBacktrace(new Error(`allReduce failed: Connection closed by peer\n${frames}`));
    expect(e.message).toBe('allReduce failed: Connection closed by peer');
    expect(e.nativeBacktrace).toBe(frames);
    const plain = withoutNativeBacktrace(new Error('no frames here'));
    expect(plain.message).toBe('no frames here');
    expect(plain.nativeBacktrace).toBeUndefined();
  });

  it('--verbose 3 shows them (the native backtrace of the error)', async () => {
    const { r } = await lone(['--verbose', '3']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(CPP_FRAME);
  }, 60_000);
});

describe('--nproc is bounded by the machine', () => {
  it('more ranks than cores is a usage error naming the bound and --nproc-oversubscribe', async () => {
    const n = nprocLimit() + 1;
    expect(() => parseTrainArgs(['--nproc', String(n)])).toThrow(
      new RegExp(`--nproc ${n}: this machine runs at most ${nprocLimit()} ranks .*--nproc-oversubscribe`),
    );
    expect(parseTrainArgs(['--nproc', String(nprocLimit())])).toMatchObject({ nproc: nprocLimit() });
    expect(parseTrainArgs(['--nproc', String(n), '--nproc-oversubscribe'])).toMatchObject({ nproc: n });
    const r = await run(process.execPath, [cli, 'train', '--nproc', '999'], { timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.err).toContain(`--nproc 999: this machine runs at most ${nprocLimit()} ranks`);
  }, 60_000);
});
