/**
 * The truncation trick at sampling time: normal noise truncated to [-T, T] by noise(), sample() and
 * `sample --truncation T`. Every value inside, the truncated normal's distribution, the same images
 * from the same seed, and errors naming a bad T or a generator whose noise is uniform.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { main } from '../../ts/cli/main';
import { type CliIO } from '../../ts/cli/commands/common';
import { noise } from '../../ts/gan/noise';
import { getPreset } from '../../ts/gan/presets';
import { seededInputs } from '../../ts/gan/sample';
import { sample } from '../../ts/store/generator';
import * as torch from '../../ts/tensor/torch';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-truncation-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const stream = (add: (s: string) => void) =>
    ({
      write(chunk: string | Uint8Array) {
        add(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString());
        return true;
      },
    }) as unknown as NodeJS.WritableStream;
  const io: CliIO = { stdout: stream((s) => (stdout += s)), stderr: stream((s) => (stderr += s)), env: {} };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

const normal = { dist: 'normal', dim: 100 } as const;
const values = (t: torch.Tensor) => t.toFloat32Array();
const BAD: [unknown, string][] = [
  [0, '0'],
  [-1, '-1'],
  ['abc', '"abc"'],
  [Number.NaN, 'NaN'],
  [Number.POSITIVE_INFINITY, 'Infinity'],
];

describe('noise({ truncation })', () => {
  it('every value is inside [-T, T], for small, usual and huge T; float32 [n, ...shape]', () => {
    for (const T of [1e-6, 0.01, 0.5, 1, 3, 1e6, 1e308]) {
      const z = noise({ dist: 'normal', dim: 100, shape: [100, 1, 1] }, 500, { seed: 4, truncation: T });
      expect([z.shape, z.dtype]).toEqual([[500, 100, 1, 1], 'float32']);
      const v = values(z);
      z.dispose();
      let max = 0;
      for (const x of v) max = Math.max(max, Math.abs(x));
      expect(max).toBeLessThanOrEqual(T);
      // not clamped: the largest |z| of 50,000 draws comes near T, without piling up on it
      if (T <= 1) expect(max).toBeGreaterThan(0.999 * T);
      if (T <= 1) expect(v.filter((x) => Math.abs(x) === Math.fround(T)).length).toBeLessThan(3);
    }
  });

  it('T = 1 over 100,000 draws: mean 0 and the truncated normal std and CDF (scipy.stats.truncnorm(-1, 1))', () => {
    const v = values(noise(normal, 1000, { seed: 11, truncation: 1 }));
    const n = v.length;
    const mean = v.reduce((a, x) => a + x, 0) / n;
    const std = Math.sqrt(v.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
    expect(Math.abs(mean)).toBeLessThan(0.006); // 3.5 standard errors (0.54 / sqrt(1e5))
    const want = 0.5395600937548968; // truncnorm(-1, 1).std(): sqrt(1 - 2 phi(1) / (2 Phi(1) - 1))
    expect(Math.abs(std / want - 1)).toBeLessThan(0.01);
    // truncnorm(-1, 1).cdf at -0.5, 0 and 0.8: within 3.5 standard errors (sqrt(p (1 - p) / 1e5) <= 0.0016)
    for (const [x, p] of [
      [-0.5, 0.21954679],
      [0, 0.5],
      [0.8, 0.92207271],
    ])
      expect(Math.abs(v.filter((z) => z <= x).length / n - p)).toBeLessThan(0.0056);
  });

  it('a huge T is the untruncated normal in distribution (std 1 within 1%)', () => {
    const v = values(noise(normal, 1000, { seed: 2, truncation: 1e6 }));
    const std = Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    expect(Math.abs(std - 1)).toBeLessThan(0.01);
  });

  it('the same seed gives the same noise; the global generator is left as it was', () => {
    torch.manualSeed(5);
    const before = values(torch.randn([4]));
    torch.manualSeed(5);
    const a = values(noise(normal, 8, { seed: 9, truncation: 0.5 }));
    const b = values(noise(normal, 8, { seed: 9, truncation: 0.5 }));
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(values(torch.randn([4])))).toEqual(Array.from(before));
    expect(Array.from(values(noise(normal, 8, { seed: 10, truncation: 0.5 })))).not.toEqual(Array.from(a));
  });

  it('a T that is not a finite number > 0 is refused, naming it; uniform noise refuses any T', () => {
    for (const [T, shown] of BAD) expect(() => noise(normal, 2, { truncation: T as number })).toThrow(`noise: truncation: expected a number > 0, got ${shown}`);
    expect(() => noise({ dist: 'uniform', dim: 4 }, 2, { truncation: 0.5 })).toThrow(
      new TypeError("noise: truncation: got 0.5, but truncation applies to normal noise only; this generator's noise is uniform"),
    );
  });

  it("seededInputs: a conditional preset's noise truncated, then its labels drawn; the same seed, the same inputs", () => {
    const cgan = getPreset('cgan');
    const [a, b] = [seededInputs(cgan, 16, 3, undefined, 0.25), seededInputs(cgan, 16, 3, undefined, 0.25)];
    expect(a.z.shape).toEqual(seededInputs(cgan, 16, 3).z.shape);
    expect(Math.max(...Array.from(values(a.z), Math.abs))).toBeLessThanOrEqual(0.25);
    expect(Array.from(values(a.z))).toEqual(Array.from(values(b.z)));
    const labels = Array.from(a.y!.toTypedArray() as BigInt64Array, Number);
    expect(labels).toEqual(Array.from(b.y!.toTypedArray() as BigInt64Array, Number));
    expect(labels.every((c) => c >= 0 && c < 10) && new Set(labels).size > 1).toBe(true);
  });
});

describe('sample({ truncation }) and sample --truncation', () => {
  const saveDir = path.join(root, 'runs');
  let normalRun: string;
  let uniformRun: string;
  beforeAll(async () => {
    const train = (preset: string) => [
      'train',
      '--preset',
      preset,
      '--epochs',
      '1',
      '--limit',
      '100',
      '--save-dir',
      saveDir,
      '--seed',
      '1',
      '--device',
      'cpu',
      '--verbose',
      '0',
    ];
    expect((await cli(train('vanilla'))).code).toBe(0); // normal noise
    expect((await cli(train('seed000'))).code).toBe(0); // uniform noise
    [normalRun, uniformRun] = [path.join(saveDir, 'run-1'), path.join(saveDir, 'run-2')];
  }, 120_000);

  it('the API: the same seed gives the same images, other than untruncated ones; bad T and uniform noise are errors', () => {
    const a = sample({ checkpoint: normalRun, count: 4, seed: 1, truncation: 0.5 });
    const b = sample({ checkpoint: normalRun, count: 4, seed: 1, truncation: 0.5 });
    const plain = sample({ checkpoint: normalRun, count: 4, seed: 1 });
    expect(a.shape).toEqual([4, 28, 28]);
    expect(Array.from(a.images)).toEqual(Array.from(b.images));
    expect(Array.from(a.images)).not.toEqual(Array.from(plain.images));
    for (const [T, shown] of BAD)
      expect(() => sample({ checkpoint: normalRun, count: 4, truncation: T as number })).toThrow(`sample: truncation: expected a number > 0, got ${shown}`);
    expect(() => sample({ checkpoint: uniformRun, count: 4, truncation: 0.5 })).toThrow(
      new TypeError("sample: truncation: got 0.5, but truncation applies to normal noise only; this generator's noise is uniform"),
    );
  });

  it('the CLI writes a PNG grid, the same bytes for the same seed; --help names the flag', async () => {
    const out = (name: string) => path.join(root, name);
    const r = await cli(['sample', normalRun, '--truncation', '0.5', '--count', '4', '--seed', '1', '--out', out('t1.png')]);
    expect(r).toEqual({ code: 0, stdout: `Wrote 4 samples (seed 1, truncation 0.5) to ${path.relative(process.cwd(), out('t1.png'))}\n`, stderr: '' });
    const png = PNG.sync.read(fs.readFileSync(out('t1.png')));
    expect([png.width, png.height]).toEqual([122, 32]); // 4 images in one row: 4 * 30 + 2, 30 + 2
    expect((await cli(['sample', normalRun, '--truncation', '0.5', '--count', '4', '--seed', '1', '--out', out('t2.png')])).code).toBe(0);
    expect(fs.readFileSync(out('t2.png')).equals(fs.readFileSync(out('t1.png')))).toBe(true);
    expect((await cli(['sample', '--help'])).stdout).toMatch(/\n {2}--truncation T {8}normal noise truncated to \[-T, T\] \(the truncation trick/);
  });

  it('the CLI: a bad T is a usage error naming it (exit 2); uniform noise is an error saying so (exit 1)', async () => {
    for (const T of ['0', '-1', 'abc', 'NaN', 'Infinity']) {
      const r = await cli(['sample', normalRun, `--truncation=${T}`, '--out', path.join(root, 'bad.png')]);
      expect([r.code, r.stdout]).toEqual([2, '']);
      expect(r.stderr).toContain(`libtorch-gan sample: --truncation: expected a number > 0, got ${JSON.stringify(T)}`);
    }
    const r = await cli(['sample', uniformRun, '--truncation', '0.5', '--out', path.join(root, 'bad.png')]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: "libtorch-gan: error: sample: truncation: got 0.5, but truncation applies to normal noise only; this generator's noise is uniform\n",
    });
    expect(fs.existsSync(path.join(root, 'bad.png'))).toBe(false);
  });
});
