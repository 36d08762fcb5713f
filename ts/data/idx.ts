/**
 * Reader for the IDX format used by MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/),
 * raw or gzip-compressed (recognised by the gzip magic 1f 8b, not by the file name).
 *
 * Layout: a big-endian 32-bit magic 0x0000TTDD (two zero bytes, data type TT, number of dimensions
 * DD), DD big-endian uint32 sizes, then the items row-major. Only TT = 0x08 (unsigned byte) is
 * supported, which is all MNIST-style datasets use: images are 0x00000803 (N, H, W), labels
 * 0x00000801 (N).
 *
 * Every problem is a DataError whose message names the file and says what is wrong.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { DataError, describeError } from './errors';

/** A decoded IDX file. `data` holds prod(dims) items, row-major. */
export interface IdxArray {
  dtype: 'uint8';
  dims: number[];
  data: Uint8Array;
}

/** What the caller expects of a file; checked after the magic. */
export interface IdxExpectation {
  /** Number of dimensions (3 for images, 1 for labels). */
  ndims?: number;
  /** What the file is, for messages ("images file", "labels file"). */
  kind?: string;
}

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

const IDX_TYPES: Record<number, string> = {
  8: 'unsigned byte',
  9: 'signed byte',
  11: 'int16',
  12: 'int32',
  13: 'float32',
  14: 'float64',
};

const hex8 = (n: number): string => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const hex2 = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`;

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips `bytes` when they start with the gzip magic, else returns them unchanged. */
export function maybeGunzip(bytes: Uint8Array, name: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  let out: Buffer;
  try {
    out = zlib.gunzipSync(bytes);
  } catch (err) {
    throw new DataError('CORRUPT_GZIP', `${name}: corrupt gzip data (${describeError(err)})`, { file: name, cause: err });
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Reads a file and gunzips it when it is gzip; the decompressed IDX bytes. */
export function readMaybeGzip(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(path);
  } catch (err) {
    throw new DataError('IO', `${path}: cannot read file (${describeError(err)})`, { file: path, cause: err });
  }
  return maybeGunzip(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), path);
}

/**
 * Decodes decompressed IDX bytes. `name` (usually the path) is used in error messages. The result's
 * `data` is a view into `bytes` (no copy) unless `bytes` sits in a much larger shared buffer.
 */
export function parseIdx(bytes: Uint8Array, name: string, expect: IdxExpectation = {}): IdxArray {
  const what = expect.kind ? `${expect.kind} ${name}` : name;
  const fail = (code: 'BAD_MAGIC' | 'UNSUPPORTED_DTYPE' | 'BAD_DIMS' | 'TRUNCATED' | 'TRAILING_DATA', msg: string) =>
    new DataError(code, `${what}: ${msg}`, { file: name });
  const expectedMagic = expect.ndims === undefined ? '0x000008NN' : hex8(0x0800 | expect.ndims);

  if (bytes.length < 4) {
    throw fail('TRUNCATED', `file is ${bytes.length} bytes, too short for the 4-byte IDX magic number`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw fail('BAD_MAGIC', `bad magic number ${hex8(magic)} (bytes ${hexBytes(bytes, 4)}), expected ${expectedMagic}; not an IDX file`);
  }
  const type = bytes[2]!;
  const ndims = bytes[3]!;
  if (type !== 0x08) {
    const known = IDX_TYPES[type];
    throw fail(
      'UNSUPPORTED_DTYPE',
      `unsupported IDX data type ${hex2(type)}${known ? ` (${known})` : ' (unknown)'} in magic ${hex8(magic)}; ` +
        `only 0x08 (unsigned byte) is supported, expected magic ${expectedMagic}`,
    );
  }
  if (expect.ndims !== undefined && ndims !== expect.ndims) {
    const hint =
      expect.ndims === 3 && ndims === 1 ? ' (this looks like a labels file)' : expect.ndims === 1 && ndims === 3 ? ' (this looks like an images file)' : '';
    throw fail('BAD_DIMS', `wrong number of dimensions: found ${ndims} (magic ${hex8(magic)}), expected ${expect.ndims} (magic ${expectedMagic})${hint}`);
  }
  if (ndims === 0) throw fail('BAD_DIMS', `IDX header declares 0 dimensions (magic ${hex8(magic)})`);

  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw fail('TRUNCATED', `truncated header: ${ndims} dimensions need a ${headerBytes}-byte header, file has ${bytes.length} bytes`);
  }
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d;
  }
  const expected = headerBytes + count;
  if (bytes.length < expected) {
    throw fail(
      'TRUNCATED',
      `truncated file: expected ${expected} bytes for dims [${dims.join(', ')}] (${headerBytes}-byte header + ${count} data bytes), ` + `found ${bytes.length}`,
    );
  }
  if (bytes.length > expected) {
    throw fail(
      'TRAILING_DATA',
      `unexpected trailing data: expected ${expected} bytes for dims [${dims.join(', ')}], found ${bytes.length} ` + `(${bytes.length - expected} extra)`,
    );
  }
  let data = new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, count);
  // Do not keep a large shared allocation (e.g. Node's Buffer pool) alive through a small view.
  if (bytes.buffer.byteLength > 2 * count + 8192) data = data.slice();
  return { dtype: 'uint8', dims, data };
}

/** Reads and decodes one IDX file (raw or gzip). */
export function readIdxFile(path: string, expect: IdxExpectation = {}): IdxArray {
  return parseIdx(readMaybeGzip(path), path, expect);
}

/** An images file (N, H, W) and its labels file (N), checked to agree on N. */
export interface ImagesLabels {
  images: IdxArray;
  labels: IdxArray;
  count: number;
  height: number;
  width: number;
}

/** Checks decoded images (N, H, W) and labels (N) agree on N; names both files when they do not. */
export function checkImagesLabels(images: IdxArray, labels: IdxArray, imagesName: string, labelsName: string): ImagesLabels {
  const [n, height, width] = images.dims as [number, number, number];
  const m = labels.dims[0]!;
  if (n !== m) {
    throw new DataError(
      'COUNT_MISMATCH',
      `image/label count mismatch: images file ${imagesName} has ${n} images but labels file ${labelsName} has ${m} labels`,
      { file: labelsName },
    );
  }
  return { images, labels, count: n, height, width };
}

/** Reads an images file and a labels file (each raw or gzip) and checks their counts match. */
export function readImagesLabels(imagesPath: string, labelsPath: string): ImagesLabels {
  const images = readIdxFile(imagesPath, { ndims: 3, kind: 'images file' });
  const labels = readIdxFile(labelsPath, { ndims: 1, kind: 'labels file' });
  return checkImagesLabels(images, labels, imagesPath, labelsPath);
}

function hexBytes(bytes: Uint8Array, n: number): string {
  return Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ');
}
