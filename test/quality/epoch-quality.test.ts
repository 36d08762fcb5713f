import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { main } from '../../ts/cli/main';
import { MNIST, type ImageDataset } from '../../ts/data/mnist';
import { pngInfo } from '../../ts/logging/png';
import { ConfigError } from '../../ts/config/config';
import { evaluate } from '../../ts/quality/evaluate';
import { METRICS_FILE, readMetrics, type QualityRow } from '../../ts/quality/epoch-quality';
import { Trainer, type TrainerEpochEvent } from '../../ts/run/trainer';
import { findPython, runPython } from '../helpers/python';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-epoch-quality-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const pyTb = findPython(['tensorboard']);

let mnist: ImageDataset;
beforeAll(async () => {
  mnist = await MNIST();
});

describe('evalEvery: quality per epoch of a conditional run (cgan, 640 images, n 500)', () => {
  const base = { preset: 'cgan', seed: 5, device: 'cpu', saveDir: path.join(root, 'runs'), verbose: 0, evalEvery: 1, evalN: 500 } as const;
  let t: Trainer;
  let events: TrainerEpochEvent[];
  let result: Awaited<ReturnType<Trainer['train']>>;
  let rows: QualityRow[];
  beforeAll(async () => {
    t = await Trainer.create({ ...base, epochs: 2 }, { dataset: mnist, limit: 640 });
    events = [];
    t.on('epoch', (e) => events.push(e));
    result = await t.train();
    rows = readMetrics(t.runDir);
  }, 300_000);
  afterAll(() => t?.dispose());

  it('metrics.csv has one row per epoch with label accuracy; the epoch events and the result carry them', () => {
    expect(rows.map((r) => [r.epoch, r.n])).toEqual([
      [1, 500],
      [2, 500],
    ]);
    for (const r of rows) {
      expect(r.fid).toBeGreaterThan(r.floorFid);
      expect(r.inceptionScore).toBeGreaterThanOrEqual(1);
      expect(r.inceptionScore).toBeLessThanOrEqual(10);
      expect(r.coverage).toBeGreaterThanOrEqual(0);
      expect(r.labelAccuracy).not.toBeNull();
    }
    expect(events.map((e) => e.quality)).toEqual(rows);
    expect(events[1]!.files.metrics).toBe(path.join(t.runDir, METRICS_FILE));
    expect(result.quality).toEqual(rows[1]);
  });

  it('the figures are those of evaluate() on the final checkpoint with the same seed and n', async () => {
    const r = await evaluate(t.runDir, { n: 500, seed: 0 });
    expect(r.fid).toBeCloseTo(rows[1]!.fid, 6);
    expect(r.labelAccuracy).toBeCloseTo(rows[1]!.labelAccuracy!, 10);
    expect(r.floor.fid).toBeCloseTo(rows[1]!.floorFid, 8);
  });

  it('libtorch-gan eval prints the table, and --json the report', async () => {
    const out: string[] = [];
    const io = { stdout: { write: (x: string) => out.push(x) > 0 }, stderr: { write: () => true }, env: {} } as never;
    expect(await main(['eval', t.runDir, '--n', '500'], io)).toBe(0);
    const text = out.join('');
    expect(text).toContain(`${t.runDir}: cgan, epoch 2, n 500, seed 0`);
    expect(text).toMatch(new RegExp(`classifier-FID\\s+${rows[1]!.fid.toFixed(2)}\\s+${rows[1]!.floorFid.toFixed(2)}`));
    expect(text).toMatch(/label accuracy\s+\d\.\d{4}/);
    out.length = 0;
    expect(await main(['eval', t.runDir, '--n', '500', '--json'], io)).toBe(0);
    const r = JSON.parse(out.join(''));
    expect([r.n, r.epoch, r.conditional]).toEqual([500, 2, true]);
    expect(r.fid).toBeCloseTo(rows[1]!.fid, 6);
  });

  it('quality.png is a PNG, and the report shows the quality section and table', () => {
    const png = pngInfo(fs.readFileSync(path.join(t.runDir, 'quality.png')));
    expect(png.width).toBeGreaterThan(300);
    const html = fs.readFileSync(path.join(t.runDir, 'report.html'), 'utf8');
    expect(html).toContain('<section id="quality">');
    expect(html).toContain('src="quality.png"');
    expect(html).toContain('<th>label_accuracy</th>');
  });

  (pyTb ? it : it.skip)('TensorBoard reads quality/* per epoch', () => {
    const script = `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={'scalars': 0})
acc.Reload()
print(json.dumps({k: [[e.step, e.value] for e in acc.Scalars(k)] for k in acc.Tags()['scalars'] if k.startswith('quality/')}))
`;
    const out = JSON.parse(runPython(pyTb!, ['-c', script, t.runDir])) as Record<string, [number, number][]>;
    expect(Object.keys(out).sort()).toEqual(['quality/coverage', 'quality/fid', 'quality/floor_fid', 'quality/inception_score', 'quality/label_accuracy']);
    expect(out['quality/fid']!.map(([s]) => s)).toEqual([1, 2]);
    expect(out['quality/fid']![1]![1]).toBeCloseTo(rows[1]!.fid, 1);
    expect(out['quality/label_accuracy']![0]![1]).toBeCloseTo(rows[0]!.labelAccuracy!, 5);
  });

  it('a resumed run keeps the earlier rows and appends its own', async () => {
    const first = await Trainer.create({ ...base, epochs: 1, saveDir: path.join(root, 'resume') }, { dataset: mnist, limit: 640 });
    await first.train();
    const row1 = readMetrics(first.runDir);
    first.dispose();
    const resumed = await Trainer.create({ resume: first.runDir, epochs: 2 }, { dataset: mnist, limit: 640 });
    await resumed.train();
    resumed.dispose();
    const after = readMetrics(first.runDir);
    expect(after.map((r) => r.epoch)).toEqual([1, 2]);
    expect(after[0]).toEqual(row1[0]);
    // a seeded run resumed exactly: the same figures as the straight run
    expect(after[1]!.fid).toBeCloseTo(rows[1]!.fid, 6);
  }, 300_000);
});

describe('evalEvery bad input', () => {
  it('evalN below 2 and a negative evalEvery are config errors; --eval-n 1 a usage error', async () => {
    await expect(Trainer.create({ preset: 'vanilla', evalN: 1, verbose: 0 })).rejects.toThrow(ConfigError);
    await expect(Trainer.create({ preset: 'vanilla', evalEvery: -1, verbose: 0 })).rejects.toThrow(/evalEvery/);
    const err: string[] = [];
    const io = { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) > 0 }, env: {} } as never;
    expect(await main(['train', '--eval-n', '1'], io)).toBe(2);
    expect(err.join('')).toMatch(/--eval-n: expected an integer from 2 to 1000000, got "1"/);
  });
});
