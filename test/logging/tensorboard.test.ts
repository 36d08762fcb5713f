import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { findPython, runPython } from '../helpers/python';
import { tmpDir } from './tmp';
import { SummaryWriter, maskedCrc32c, tfRecord } from '../../ts/logging/tensorboard';
import { makeGrid } from '../../ts/logging/grid';
import { encodePng } from '../../ts/logging/png';

const py = findPython(['tensorboard']);
const itPy = py ? it : it.skip;

// Reads every event file in a folder with TensorBoard's own reader (CRCs checked) and its
// EventAccumulator, and prints what it found as JSON.
const READER = `
import json, os, struct, sys
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader, EventFileLoader
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
d = sys.argv[1]
files = sorted(f for f in os.listdir(d) if 'tfevents' in f)
raw = []
for f in files:
    for rec in RawEventFileLoader(os.path.join(d, f)).Load():
        raw.append(len(rec))
first = next(iter(EventFileLoader(os.path.join(d, files[0])).Load()))
acc = EventAccumulator(d, size_guidance={'scalars': 0, 'images': 0})
acc.Reload()
tags = acc.Tags()
out = {
  'files': files,
  'records': len(raw),
  'file_version': first.file_version,
  'scalar_tags': sorted(tags['scalars']),
  'image_tags': sorted(tags['images']),
  'scalars': {t: [[e.step, struct.unpack('<I', struct.pack('<f', e.value))[0], e.wall_time] for e in acc.Scalars(t)] for t in tags['scalars']},
  'images': {t: [[e.step, e.width, e.height, e.encoded_image_string.hex()] for e in acc.Images(t)] for t in tags['images']},
}
print(json.dumps(out))
`;

function f32bits(v: number): number {
  const b = Buffer.alloc(4);
  b.writeFloatLE(v);
  return b.readUInt32LE();
}

describe('TFRecord framing', () => {
  it('masks CRC32C like TensorFlow (vectors from tensorboard.compat masked_crc32c)', () => {
    expect(maskedCrc32c(Buffer.from('123456789'))).toBe(0xc78ab0e5);
    expect(maskedCrc32c(new Uint8Array(8))).toBe(0x07980329);
  });

  it('frames a record as length, masked CRC of length, data, masked CRC of data', () => {
    const data = Buffer.from('123456789');
    const rec = tfRecord(data);
    expect(rec.length).toBe(9 + 16);
    expect(rec.readBigUInt64LE(0)).toBe(9n);
    expect(rec.readUInt32LE(8)).toBe(maskedCrc32c(rec.subarray(0, 8)));
    expect(rec.subarray(12, 21).toString()).toBe('123456789');
    expect(rec.readUInt32LE(21)).toBe(0xc78ab0e5);
  });
});

describe('SummaryWriter', () => {
  it('names the file events.out.tfevents.<seconds>.<host>... and starts it with the version record', () => {
    const dir = tmpDir();
    const before = Math.floor(Date.now() / 1000);
    const w = new SummaryWriter(dir, { filenameSuffix: '.gan' });
    const name = path.basename(w.filePath);
    const m = /^events\.out\.tfevents\.(\d{10})\.(.+)\.gan$/.exec(name);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(before);
    expect(m![2].startsWith(os.hostname().replace(/[^A-Za-z0-9._-]/g, '_'))).toBe(true);
    // the version record is on disk before anything else is logged
    const bytes = fs.readFileSync(w.filePath);
    const len = Number(bytes.readBigUInt64LE(0));
    expect(bytes.length).toBe(len + 16);
    expect(bytes.subarray(12, 12 + len).toString('latin1')).toContain('brain.Event:2');
    // a second writer in the same folder and second gets its own file
    const w2 = new SummaryWriter(dir, { filenameSuffix: '.gan' });
    expect(w2.filePath).not.toBe(w.filePath);
    w.close();
    w2.close();
    expect(() => w.addScalar('x', 1, 0)).toThrow(/closed/);
    w.close(); // idempotent
  });

  it('queues events and writes them on flush and close', () => {
    const dir = tmpDir();
    const w = new SummaryWriter(dir, { maxQueue: 100, flushMillis: 60000 });
    const size0 = fs.statSync(w.filePath).size;
    w.addScalar('loss/D', 0.5, 1);
    expect(fs.statSync(w.filePath).size).toBe(size0);
    w.flush();
    const size1 = fs.statSync(w.filePath).size;
    expect(size1).toBeGreaterThan(size0);
    w.addScalar('loss/D', 0.25, 2);
    w.close();
    expect(fs.statSync(w.filePath).size).toBeGreaterThan(size1);
  });

  it('rejects invalid steps', () => {
    const w = new SummaryWriter(tmpDir());
    expect(() => w.addScalar('a', 1, -1)).toThrow(RangeError);
    expect(() => w.addScalar('a', 1, 1.5)).toThrow(RangeError);
    w.close();
  });

  itPy('is read back by TensorBoard: scalar tags, steps, float32 values, image sizes', () => {
    const dir = tmpDir();
    const w = new SummaryWriter(dir, { maxQueue: 3 });
    const dLoss = [1.3862943611198906, 0.9, 0.123456789, 2.5e-7];
    const gLoss = [0.6931471805599453, 1.7, 3.14159265358979, 42];
    const steps = [0, 100, 200, 1000];
    for (let i = 0; i < steps.length; i++) {
      w.addScalar('loss/D', dLoss[i], steps[i], 1700000000 + i);
      w.addScalar('loss/G', gLoss[i], steps[i]);
    }
    // image 1: a grid of 6 gray 5x4 images in [-1,1] (3 per row) -> 3*(4+2)+2 = 20 wide, 2*(5+2)+2 = 16 high
    const imgs = new Float32Array(6 * 5 * 4).map((_, i) => Math.sin(i) * 0.9);
    const grid = makeGrid({ data: imgs, shape: [6, 1, 5, 4] }, { nrow: 3, range: '[-1,1]' });
    w.addImage('samples', grid, 200);
    // image 2: an RGB PNG given as bytes, 7x3
    const rgb = new Uint8Array(7 * 3 * 3).map((_, i) => (i * 37) % 256);
    const png = encodePng(rgb, 7, 3, 3);
    w.addImage('real', png, 0);
    w.addImageGrid('samples', { data: imgs, shape: [6, 5, 4] }, 300, { nrow: 2, range: '[-1,1]' });
    w.close();

    const out = JSON.parse(runPython(py!, ['-c', READER, dir]));
    expect(out.files).toEqual([path.basename(w.filePath)]);
    expect(out.file_version).toBe('brain.Event:2');
    expect(out.records).toBe(1 + 8 + 3);
    expect(out.scalar_tags).toEqual(['loss/D', 'loss/G']);
    expect(out.image_tags).toEqual(['real', 'samples']);
    expect(out.scalars['loss/D'].map((e: number[]) => e[0])).toEqual(steps);
    expect(out.scalars['loss/D'].map((e: number[]) => e[1])).toEqual(dLoss.map(f32bits));
    expect(out.scalars['loss/G'].map((e: number[]) => e[1])).toEqual(gLoss.map(f32bits));
    expect(out.scalars['loss/D'].map((e: number[]) => e[2])).toEqual([1700000000, 1700000001, 1700000002, 1700000003]);
    const now = Date.now() / 1000;
    for (const e of out.scalars['loss/G']) expect(Math.abs(e[2] - now)).toBeLessThan(60);

    const samples = out.images.samples;
    expect(samples.map((e: unknown[]) => e.slice(0, 3))).toEqual([
      [200, 20, 16],
      [300, 2 * (4 + 2) + 2, 3 * (5 + 2) + 2],
    ]);
    // the stored PNG decodes to the grid's pixels
    const decoded = PNG.sync.read(Buffer.from(samples[0][3], 'hex'));
    expect([decoded.width, decoded.height]).toEqual([20, 16]);
    for (let i = 0; i < 20 * 16; i++) expect(decoded.data[i * 4]).toBe(grid.pixels[i]);
    expect(out.images.real).toEqual([[0, 7, 3, png.toString('hex')]]);
  });
});
