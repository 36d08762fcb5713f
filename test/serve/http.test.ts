/**
 * `serve` over real HTTP: PNG grids decoded and sized, JSON parsed, 400s naming the parameter, 503 with
 * Retry-After beyond the queue bound, the swap to a newer checkpoint while requests run (a trainer.json
 * ahead of its file is refused until the file lands), and the CLI's SIGTERM drain in a child process.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { sample } from '../../ts/store/generator';
import { startServer, type GeneratorServer } from '../../ts/serve/http';
import { builtLib, runCli, tinyRun } from '../helpers/lib';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-serve-http-'));
let cgan: string;
let vanillaA: string;
let vanillaB: string;

beforeAll(() => {
  cgan = tinyRun('cgan', path.join(root, 'cgan'));
  vanillaA = tinyRun('vanilla', path.join(root, 'a'), 2);
  vanillaB = tinyRun('vanilla', path.join(root, 'b'), 3);
}, 180_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** A JSON answer: the fields the tests read. */
type Body = Record<string, unknown> & { pixels: string; error: string };
const bodyOf = async (r: Response): Promise<Body> => (await r.json()) as Body;
const pixelsOf = (body: Body) => Buffer.from(body.pixels, 'base64');

describe('a started server', () => {
  let server: GeneratorServer;
  beforeAll(async () => {
    server = await startServer(cgan, { port: 0, maxCount: 64, watchMs: 0 });
  });
  afterAll(() => server.close());

  it('answers /sample.png with a decodable grid of the asked size', async () => {
    const r = await fetch(`${server.url}/sample.png?count=12&nrow=4&seed=3&label=7`);
    expect([r.status, r.headers.get('content-type')]).toEqual([200, 'image/png']);
    const img = PNG.sync.read(Buffer.from(await r.arrayBuffer()));
    expect([img.width, img.height]).toEqual([4 * 30 + 2, 3 * 30 + 2]);
  });

  it('answers /sample.json with shape, range, labels, seed and float32 pixels equal to sample()', async () => {
    const r = await fetch(`${server.url}/sample.json?count=8&seed=5&label=2&truncation=0.8`);
    expect(r.status).toBe(200);
    const body = await bodyOf(r);
    expect({ shape: body.shape, range: body.range, seed: body.seed, labels: body.labels, dtype: body.dtype }).toEqual({
      shape: [8, 28, 28],
      range: '[-1,1]',
      seed: 5,
      labels: new Array(8).fill(2),
      dtype: 'float32',
    });
    const px = pixelsOf(body);
    expect(px.length).toBe(8 * 28 * 28 * 4);
    const ref = sample({ checkpoint: cgan, count: 8, seed: 5, labels: 2, truncation: 0.8 });
    expect(px.equals(Buffer.from(ref.images.buffer, ref.images.byteOffset, ref.images.byteLength))).toBe(true);
  });

  it.each([
    ['count=0', 'count', 'an integer in [1, 64]'],
    ['count=65', 'count', 'an integer in [1, 64]'],
    ['count=2.5', 'count', 'an integer in [1, 64]'],
    ['label=10', 'label', 'an integer in [0, 9]'],
    ['seed=-1', 'seed', `an integer in [0, ${Number.MAX_SAFE_INTEGER}]`],
    ['truncation=0', 'truncation', 'a finite number > 0'],
    ['truncation=abc', 'truncation', 'a finite number > 0'],
    ['nrow=0', 'nrow', 'an integer in [1, 64]'],
    ['colour=red', 'colour', 'one of the parameters count, label, seed, truncation, nrow'],
  ])('answers 400 to %s, naming the parameter and what is allowed', async (query, parameter, allowed) => {
    const r = await fetch(`${server.url}/sample.png?${query}`);
    expect(r.status).toBe(400);
    const body = await bodyOf(r);
    expect({ parameter: body.parameter, allowed: body.allowed }).toEqual({ parameter, allowed });
    expect(body.error).toContain(parameter);
  });

  it('answers /healthz, /metrics (Prometheus text with the requests so far) and / (the page)', async () => {
    expect(await bodyOf(await fetch(`${server.url}/healthz`))).toMatchObject({ status: 'ok', epoch: 1, ema: false });
    const m = await (await fetch(`${server.url}/metrics`)).text();
    expect(m).toMatch(/^ltg_requests_total\{route="\/sample.png",code="400"\} \d+$/m);
    expect(m).toMatch(/^ltg_request_duration_seconds_count \d+$/m);
    expect(m).toMatch(/^ltg_batch_images_bucket\{le="16"\} \d+$/m);
    expect(m).toMatch(/^ltg_queue_depth 0$/m);
    expect(Number(/^process_resident_memory_bytes (\d+)$/m.exec(m)?.[1])).toBeGreaterThan(50e6); // a process holding LibTorch
    // The event loop's delay since the previous scrape: this test blocks the loop (the server's) for 80 ms.
    const until = performance.now() + 80;
    while (performance.now() < until);
    await new Promise((r) => setTimeout(r, 30));
    const after = await (await fetch(`${server.url}/metrics`)).text();
    const delay = (q: string, text: string) => Number(new RegExp(`^ltg_event_loop_delay_${q}_seconds (\\S+)$`, 'm').exec(text)?.[1]);
    expect(delay('max', after)).toBeGreaterThan(0.05);
    expect(delay('max', after)).toBeLessThan(5);
    expect(delay('p50', after)).toBeLessThan(delay('max', after));
    const page = await (await fetch(`${server.url}/`)).text();
    expect(page).toContain('/sample.png?');
    expect((await fetch(`${server.url}/nowhere`)).status).toBe(404);
  });
});

describe('overload', () => {
  it('answers 503 with Retry-After beyond maxQueue, and serves the rest', async () => {
    const server = await startServer(cgan, { port: 0, maxQueue: 2, watchMs: 0 });
    try {
      const rs = await Promise.all(Array.from({ length: 12 }, (_, i) => fetch(`${server.url}/sample.json?count=256&seed=${i}`)));
      const codes = rs.map((r) => r.status);
      expect(codes.filter((c) => c === 200).length).toBeGreaterThanOrEqual(2);
      expect(codes.filter((c) => c === 503).length).toBeGreaterThan(0);
      expect(codes.every((c) => c === 200 || c === 503)).toBe(true);
      const busy = rs.find((r) => r.status === 503)!;
      expect(busy.headers.get('retry-after')).toBe('1');
      expect((await bodyOf(busy)).error).toMatch(/overloaded: \d+ sampling requests queued \(at most 2\)/);
      await Promise.all(rs.map((r) => r.arrayBuffer().catch(() => undefined)));
    } finally {
      await server.close();
    }
  });
});

describe('a newer checkpoint', () => {
  /** Atomic copy, as the trainer writes: a temporary file renamed over the target. */
  const land = (from: string, to: string) => {
    fs.copyFileSync(from, `${to}.tmp`);
    fs.renameSync(`${to}.tmp`, to);
  };

  it('is swapped in while requests run; a trainer.json ahead of its file is refused until the file lands', async () => {
    const diff = (a: Buffer, b: Buffer) => {
      const [x, y] = [new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4), new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4)];
      return x.length === y.length ? x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0) : Number.POSITIVE_INFINITY;
    };
    const near = (a: Buffer, b: Buffer) => diff(a, b) <= 1e-5;
    const served = path.join(root, 'served');
    fs.cpSync(vanillaA, served, { recursive: true });
    const refOf = (dir: string) => {
      const s = sample({ checkpoint: dir, count: 8, seed: 5 });
      return Buffer.from(s.images.buffer, s.images.byteOffset, s.images.byteLength);
    };
    const [refA, refB] = [refOf(vanillaA), refOf(vanillaB)];
    expect(refA.equals(refB)).toBe(false);
    const swapped: (number | undefined)[] = [];
    const refused: string[] = [];
    const server = await startServer(served, { port: 0, watchMs: 50, onSwap: (i) => swapped.push(i.epoch), onSwapError: (e) => refused.push(e.message) });
    const seen: string[] = [];
    let running = true;
    const loop = async () => {
      while (running) {
        const r = await fetch(`${server.url}/sample.json?count=8&seed=5`);
        expect(r.status).toBe(200);
        const px = pixelsOf(await bodyOf(r));
        // within float rounding: a coalesced batch's GEMM may sum in another order than sample()'s (a kernel picked by batch size)
        // neither: named with its distance from each, so a failure says how far off it was
        seen.push(near(px, refA) ? 'A' : near(px, refB) ? 'B' : `other (max |diff| ${diff(px, refA)} from A, ${diff(px, refB)} from B)`);
      }
    };
    const loops = [loop(), loop(), loop()];
    const until = async (done: () => boolean) => {
      for (let i = 0; i < 400 && !done(); i++) await new Promise((r) => setTimeout(r, 25));
      expect(done()).toBe(true);
    };
    try {
      await until(() => seen.length >= 6);
      land(path.join(vanillaB, 'trainer.json'), path.join(served, 'trainer.json')); // its generator has not landed yet
      await until(() => refused.length > 0);
      expect(refused[0]).toMatch(/generator\.safetensors/);
      expect(swapped).toEqual([]);
      const before = seen.length;
      await until(() => seen.length >= before + 6);
      land(path.join(vanillaB, 'generator.safetensors'), path.join(served, 'generator.safetensors'));
      await until(() => swapped.length === 1);
      const at = seen.length;
      await until(() => seen.length >= at + 12);
    } finally {
      running = false;
      await Promise.all(loops);
      await server.close();
    }
    expect(swapped).toEqual([1]);
    expect(seen.filter((x) => x.startsWith('other'))).toEqual([]);
    // A until the swap, then B (requests in flight at the swap finish on A)
    const firstB = seen.indexOf('B');
    expect(firstB).toBeGreaterThan(5);
    expect(seen.slice(firstB + 3).every((s) => s === 'B')).toBe(true);
  });
});

describe('libtorch-gan serve', () => {
  it('refuses a missing RUN_DIR, a bad flag and a folder that is not a run, naming them', () => {
    const none = runCli(['serve']);
    expect({ status: none.status, stdout: none.stdout }).toEqual({ status: 2, stdout: '' });
    expect(none.stderr).toMatch(/serve: missing RUN_DIR/);
    const bad = runCli(['serve', cgan, '--max-count', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--max-count/);
    const notRun = runCli(['serve', root, '--port', '0']);
    expect(notRun.status).toBe(1);
    expect(notRun.stderr).toMatch(/not a run folder \(config\.json is missing\)/);
  });

  it('SIGTERM: finishes the requests in flight, then exits 0', async () => {
    const child = spawn(process.execPath, [builtLib(path.join('lib', 'cli', 'main.js')), 'serve', cgan, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 400 && !/on http:\S+/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    const url = /on (http:\S+)/.exec(out)![1]!;
    const requests = Array.from({ length: 6 }, (_, i) =>
      fetch(`${url}/sample.json?count=256&seed=${i}`).then(async (r) => [r.status, (await bodyOf(r)).shape]),
    );
    await new Promise((r) => setTimeout(r, 150)); // the requests are in flight
    child.kill('SIGTERM');
    const answers = await Promise.all(requests);
    expect(answers).toEqual(new Array(6).fill([200, [256, 28, 28]]));
    expect(await exited).toBe(0);
    expect(err).toBe('');
    expect(out).toMatch(/stopping: finishing the requests in flight\nstopped\n$/);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 60_000);
});
