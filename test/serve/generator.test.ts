/**
 * loadGenerator's Generator: concurrent calls coalesced into one forward pass return bit for bit what
 * each returns alone; the event loop keeps running during a burst; options and closed generators are
 * refused by name.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { type Samples } from '../../ts/gan/sample';
import { sample } from '../../ts/store/generator';
import { loadGenerator } from '../../ts/serve/generator';
import { runCli, tinyRun } from '../helpers/lib';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-serve-gen-'));
let vanilla: string;
let cgan: string;

beforeAll(() => {
  vanilla = tinyRun('vanilla', path.join(root, 'vanilla'));
  cgan = tinyRun('cgan', path.join(root, 'cgan'));
}, 120_000);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const bytes = (s: Samples) => Buffer.from(s.images.buffer, s.images.byteOffset, s.images.byteLength);

describe('coalescing', () => {
  // counts that leave partial GEMM blocks (1, 3, 5, 7) among full ones, with and without labels and truncation
  const calls = [
    { count: 1, seed: 11 },
    { count: 3, seed: 12, truncation: 0.7 },
    { count: 5, seed: 13 },
    { count: 7, seed: 14 },
    { count: 16, seed: 15 },
    { count: 2, seed: 16 },
    { count: 64, seed: 17, truncation: 1.5 },
    { count: 1, seed: 18 },
  ];

  it.each([
    ['vanilla', () => vanilla, calls],
    ['cgan', () => cgan, calls.map((c, i) => (i % 2 ? { ...c, labels: i % 10 } : c))],
  ])('%s: concurrent calls run as one batch, each equal bit for bit to the call alone', async (_name, dir, list) => {
    const batches: { calls: number; images: number }[] = [];
    const g = await loadGenerator(dir(), { onBatch: (b) => batches.push(b), maxWaitMs: 20 });
    try {
      const alone: Samples[] = [];
      for (const c of list) alone.push(await g.sample(c));
      expect(batches.every((b) => b.calls === 1)).toBe(true);
      batches.length = 0;
      const together = await Promise.all(list.map((c) => g.sample(c)));
      expect(batches.length).toBe(1);
      expect(batches[0]).toMatchObject({ calls: list.length, images: list.reduce((s, c) => s + c.count, 0) });
      for (const [i, a] of alone.entries()) {
        const b = together[i]!;
        expect({ i, shape: b.shape, seed: b.seed, labels: b.labels }).toEqual({ i, shape: a.shape, seed: a.seed, labels: a.labels });
        expect(bytes(b).equals(bytes(a))).toBe(true);
        expect(Array.from(b.images.slice(0, 64)).every(Number.isFinite)).toBe(true);
      }
      // the images are the run's: the same G as sample() uses, so a batch of 16 agrees with it to float rounding
      const ref = sample({ checkpoint: dir(), count: 16, seed: 15 });
      const mine = together[4]!.images;
      let worst = 0;
      for (let k = 0; k < mine.length; k++) worst = Math.max(worst, Math.abs(mine[k]! - ref.images[k]!));
      expect(worst).toBeLessThan(1e-5);
    } finally {
      await g.close();
    }
  });

  it('maxWaitMs 0: calls made in one turn share a forward pass at once; calls made while it runs share the next', async () => {
    const batches: { calls: number; images: number }[] = [];
    const g = await loadGenerator(vanilla, { maxWaitMs: 0, onBatch: (b) => batches.push(b) });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => g.sample({ count: 2, seed: i })));
      expect(batches).toEqual([expect.objectContaining({ calls: 5, images: 10 })]);
      batches.length = 0;
      const first = g.sample({ count: 64, seed: 9 });
      await new Promise((r) => setImmediate(r)); // its batch has been sent: the worker runs it
      const rest = Array.from({ length: 4 }, (_, i) => g.sample({ count: 1, seed: i }));
      await Promise.all([first, ...rest]);
      expect(batches.map((b) => b.calls)).toEqual([1, 4]);
    } finally {
      await g.close();
    }
  });

  it('splits at maxBatch: a burst of 10 calls of 30 images with maxBatch 64 runs in batches of 2 calls', async () => {
    const batches: { calls: number; images: number }[] = [];
    const g = await loadGenerator(vanilla, { maxBatch: 64, onBatch: (b) => batches.push(b) });
    try {
      const out = await Promise.all(Array.from({ length: 10 }, (_, i) => g.sample({ count: 30, seed: i })));
      expect(out.map((s) => s.seed)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(batches.map((b) => b.images)).toEqual([60, 60, 60, 60, 60]);
      const alone = await g.sample({ count: 30, seed: 7 });
      expect(bytes(out[7]!).equals(bytes(alone))).toBe(true);
    } finally {
      await g.close();
    }
  });
});

describe('the event loop during a burst', () => {
  it('keeps its timers on time while 32 calls of 64 images run', async () => {
    const g = await loadGenerator(cgan);
    try {
      await g.sample({ count: 8, seed: 1 }); // warm
      let last = performance.now();
      let worst = 0;
      const timer = setInterval(() => {
        const now = performance.now();
        worst = Math.max(worst, now - last - 5);
        last = now;
      }, 5);
      const t0 = performance.now();
      await Promise.all(Array.from({ length: 32 }, (_, i) => g.sample({ count: 64, seed: i })));
      const burst = performance.now() - t0;
      clearInterval(timer);
      // the burst takes far longer than any timer's lateness: the forward passes ran off this thread
      expect(burst).toBeGreaterThan(200);
      expect(worst).toBeLessThan(Math.min(100, burst / 4));
    } finally {
      await g.close();
    }
  });
});

describe('png', () => {
  it('is the grid of the same images: 16 images at nrow 4 are 122 x 122 pixels', async () => {
    const g = await loadGenerator(cgan);
    try {
      const [png, s] = await Promise.all([g.png({ count: 16, seed: 3, nrow: 4, labels: 5 }), g.sample({ count: 16, seed: 3, labels: 5 })]);
      const img = PNG.sync.read(png);
      expect([img.width, img.height]).toEqual([122, 122]);
      // the pixel at (2, 2) is image 0's (0, 0) pixel as torchvision maps [-1, 1] to bytes
      const v = Math.min(255, Math.max(0, Math.floor((s.images[0]! + 1) * 127.5 + 0.5)));
      expect(img.data[(2 * 122 + 2) * 4]).toBe(v);
      expect(s.labels).toEqual(new Array(16).fill(5));
    } finally {
      await g.close();
    }
  });
});

describe('a torch.save file as source', () => {
  it('loads with its preset and samples what the run folder gives, bit for bit', async () => {
    const file = path.join(root, 'G.pt');
    const r = runCli(['export', vanilla, '--pytorch', file]);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    await expect(loadGenerator(file)).rejects.toThrow(/is a file: give the preset whose generator it holds/);
    const fromFile = await loadGenerator(file, { preset: 'vanilla' });
    const fromRun = await loadGenerator(vanilla);
    try {
      const [a, b] = await Promise.all([fromFile.sample({ count: 9, seed: 4 }), fromRun.sample({ count: 9, seed: 4 })]);
      // the same weights (torch.save'd and safetensors) through two workers: equal within float rounding (1e-5;
      // two concurrent forwards may be scheduled over threads differently)
      expect(a.images.length).toBe(b.images.length);
      expect(a.images.every((v, i) => Math.abs(v - b.images[i]) <= 1e-5)).toBe(true);
    } finally {
      await Promise.all([fromFile.close(), fromRun.close()]);
    }
  });
});

describe('errors', () => {
  it('names bad options, bad labels and calls after close', async () => {
    await expect(loadGenerator(vanilla, { maxBatch: 0 })).rejects.toThrow(/loadGenerator: maxBatch: expected an integer >= 1, got 0/);
    await expect(loadGenerator(vanilla, { maxBatchs: 3 } as never)).rejects.toThrow(/unknown option "maxBatchs": did you mean maxBatch\?/);
    await expect(loadGenerator(vanilla, { ema: true })).rejects.toThrow(/ema: true, but .* keeps no EMA generator/);
    await expect(loadGenerator(path.join(root, 'nothing'))).rejects.toThrow(/does not exist/);
    const g = await loadGenerator(cgan);
    await expect(g.sample({ count: 0 })).rejects.toThrow(/Generator.sample: count: expected an integer >= 1, got 0/);
    await expect(g.sample({ count: 2, labels: 10 })).rejects.toThrow(/label 10 is outside \[0, 10\)/);
    await expect(g.sample({ count: 2, labels: [1] })).rejects.toThrow(/expected 2 labels/);
    await expect(g.sample({ truncation: -1 })).rejects.toThrow(/truncation: expected a number > 0, got -1/);
    await expect(g.png({ nrow: 0 })).rejects.toThrow(/Generator.png: nrow/);
    const pending = g.sample({ count: 4, seed: 1 }); // queued before close: it finishes
    await g.close();
    expect((await pending).shape).toEqual([4, 28, 28]);
    await expect(g.sample({ count: 1 })).rejects.toThrow(/Generator: closed \(close\(\) was called\)/);
    await expect(g.png()).rejects.toThrow(/closed/);
  });

  it('Symbol.dispose and Symbol.asyncDispose close it', async () => {
    const a = await loadGenerator(vanilla);
    const queued = a.sample({ count: 2, seed: 1 });
    a[Symbol.dispose]();
    expect(a.closed).toBe(true);
    expect((await queued).shape).toEqual([2, 28, 28]);
    await expect(a.sample()).rejects.toThrow(/closed/);
    const b = await loadGenerator(vanilla);
    await b[Symbol.asyncDispose]();
    expect(b.closed).toBe(true);
    await expect(b.sample()).rejects.toThrow(/closed/);
  });
});
