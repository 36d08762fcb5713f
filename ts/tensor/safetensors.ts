/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header { name: { dtype, shape, data_offsets } , __metadata__ }, then raw
 * little-endian data. The format is small enough to read and write here; files we write load in
 * Python's safetensors.torch.load_file and the reverse (tested).
 */
import * as fs from 'node:fs';
import { loadAddon } from '../native/addon';
import { writeFileAtomic } from '../util/fs';
import { isPlainObject } from '../util/describe';
import { readOptions } from '../util/options';
import { type Device, type DType } from './dtype';
import { Tensor } from './tensor';

const CODES: Record<string, { dtype: DType; bytes: number }> = {
  F32: { dtype: 'float32', bytes: 4 },
  F64: { dtype: 'float64', bytes: 8 },
  F16: { dtype: 'float16', bytes: 2 },
  BF16: { dtype: 'bfloat16', bytes: 2 },
  I64: { dtype: 'int64', bytes: 8 },
  I32: { dtype: 'int32', bytes: 4 },
  I16: { dtype: 'int16', bytes: 2 },
  I8: { dtype: 'int8', bytes: 1 },
  U8: { dtype: 'uint8', bytes: 1 },
  BOOL: { dtype: 'bool', bytes: 1 },
};
const CODE_OF = Object.fromEntries(Object.entries(CODES).map(([k, v]) => [v.dtype, k])) as Record<DType, string>;

export class SafetensorsError extends Error {
  constructor(file: string, msg: string) {
    super(`${file}: ${msg}`);
    this.name = 'SafetensorsError';
  }
}

/** Serializes tensors (copied to CPU) to safetensors bytes. */
export function save(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Buffer {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') throw new TypeError(`safetensors metadata ${k}: values must be strings`);
    header.__metadata__ = metadata;
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__' || name === '__proto__') throw new TypeError(`safetensors.save: tensor name ${JSON.stringify(name)} is reserved`);
    const t = tensors[name];
    if (!(t instanceof Tensor)) throw new TypeError(`safetensors.save: ${name} is not a Tensor`);
    const arr = t.dtype === 'float16' || t.dtype === 'bfloat16' ? t.to('float32').toTypedArray() : t.toTypedArray();
    const dtype = t.dtype === 'float16' || t.dtype === 'bfloat16' ? 'float32' : t.dtype;
    const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    header[name] = { dtype: CODE_OF[dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    chunks.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-byte aligned
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json), ...chunks]);
}

/** Writes atomically and durably (util/fs.ts: temporary file, fsync, rename, folder fsync). */
export function saveFile(tensors: Record<string, Tensor>, file: string, metadata?: Record<string, string>): void {
  writeFileAtomic(file, save(tensors, metadata));
}

export interface Loaded {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/** A header value as the error shows it: its JSON, shortened. */
function shown(v: unknown): string {
  const s = v === undefined ? 'nothing' : JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

interface Entry {
  key: string;
  code: { dtype: DType; bytes: number };
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Checks a parsed header as the reference implementation does (every entry an object with a known
 * dtype, a shape of integers >= 0 and [begin, end] offsets; the tensors' data back to back, without
 * overlaps or gaps, filling the data exactly) and returns the entries by offset. Every problem is a
 * SafetensorsError naming the file and the key.
 */
function checkHeader(name: string, header: unknown, dataLen: number): { entries: Entry[]; metadata: Record<string, string> } {
  const fail = (msg: string) => new SafetensorsError(name, msg);
  if (!isPlainObject(header))
    throw fail(`header: expected a JSON object { <tensor name>: { dtype, shape, data_offsets }, __metadata__? }, got ${shown(header)}`);
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [key, v] of Object.entries(header)) {
    // JSON.parse makes "__proto__" an own key; assigned into a result object it would replace its prototype
    if (key === '__proto__') throw fail('header: key "__proto__" is not allowed (it names the prototype of a JavaScript object)');
    if (key === '__metadata__') {
      if (v === null) continue;
      if (!isPlainObject(v)) throw fail(`__metadata__: expected an object of strings, got ${shown(v)}`);
      for (const [mk, mv] of Object.entries(v)) {
        if (mk === '__proto__') throw fail('__metadata__: key "__proto__" is not allowed (it names the prototype of a JavaScript object)');
        if (typeof mv !== 'string') throw fail(`__metadata__.${JSON.stringify(mk)}: expected a string, got ${shown(mv)}`);
        metadata[mk] = mv;
      }
      continue;
    }
    const t = `tensor ${JSON.stringify(key)}`;
    if (!isPlainObject(v)) throw fail(`${t}: expected an object { dtype, shape, data_offsets }, got ${shown(v)}`);
    const code = typeof v.dtype === 'string' && Object.hasOwn(CODES, v.dtype) ? CODES[v.dtype] : undefined;
    if (!code) throw fail(`${t}: dtype: expected one of ${Object.keys(CODES).join(', ')}, got ${shown(v.dtype)}`);
    if (!Array.isArray(v.shape) || !v.shape.every(isIndex)) throw fail(`${t}: shape: expected an array of integers >= 0, got ${shown(v.shape)}`);
    const off = v.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !isIndex(off[0]) || !isIndex(off[1]) || off[0] > off[1]) {
      throw fail(`${t}: data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got ${shown(off)}`);
    }
    const [begin, end] = off as [number, number];
    if (end > dataLen) throw fail(`${t}: data_offsets [${begin}, ${end}] reach past the end of the data (${dataLen} bytes): truncated or corrupt`);
    const shape = v.shape as number[];
    const need = shape.reduce((a, c) => a * c, 1) * code.bytes;
    if (need !== end - begin) throw fail(`${t}: shape [${shape}] of ${v.dtype} needs ${need} bytes, its data_offsets [${begin}, ${end}] hold ${end - begin}`);
    entries.push({ key, code, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  let prev: Entry | undefined;
  for (const e of entries) {
    if (e.begin < at)
      throw fail(
        `tensor ${JSON.stringify(e.key)}: data_offsets [${e.begin}, ${e.end}] overlap those of tensor ${JSON.stringify(prev!.key)} [${prev!.begin}, ${prev!.end}]`,
      );
    if (e.begin > at)
      throw fail(
        `tensor ${JSON.stringify(e.key)}: data_offsets [${e.begin}, ${e.end}] leave bytes ${at}..${e.begin} unused (the tensors' data must be back to back)`,
      );
    at = e.end;
    prev = e;
  }
  if (at !== dataLen) throw fail(`the tensors' data ends at byte ${at}, the file has ${dataLen} bytes of data: truncated or corrupt`);
  return { entries, metadata };
}

/** Parses safetensors bytes; `name` is used in error messages. */
export function loadWithMetadata(bytes: Uint8Array, opts: { device?: Device; name?: string } = {}): Loaded {
  const o = readOptions('safetensors.load', opts, ['device', 'name'], { optional: true });
  const name = o.stringOr('name', '<buffer>');
  const device = o.deviceOr('device', 'cpu');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) throw new SafetensorsError(name, `file is ${buf.length} bytes, too short for a safetensors header`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(buf.length - 8))
    throw new SafetensorsError(name, `header length ${n} exceeds the file size (${buf.length} bytes): not a safetensors file, or truncated`);
  let header: unknown;
  try {
    header = JSON.parse(buf.subarray(8, 8 + Number(n)).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(name, `header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + Number(n);
  // everything is checked before the first tensor is made, so that a bad file leaks none
  const { entries, metadata } = checkHeader(name, header, buf.length - dataStart);
  const tensors: Record<string, Tensor> = {};
  const addon = loadAddon();
  for (const { key, code, shape, begin: b, end: e } of entries) {
    const numel = (e - b) / code.bytes;
    // Copy into an aligned buffer of the right element type.
    const raw = new Uint8Array(e - b);
    raw.set(buf.subarray(dataStart + b, dataStart + e));
    const viewDtype = code.dtype === 'float16' || code.dtype === 'bfloat16' ? null : code.dtype;
    let typed: ArrayBufferView;
    switch (viewDtype) {
      case 'float32':
        typed = new Float32Array(raw.buffer);
        break;
      case 'float64':
        typed = new Float64Array(raw.buffer);
        break;
      case 'int64':
        typed = new BigInt64Array(raw.buffer);
        break;
      case 'int32':
        typed = new Int32Array(raw.buffer);
        break;
      case 'int16':
        typed = new Int16Array(raw.buffer);
        break;
      case 'int8':
        typed = new Int8Array(raw.buffer);
        break;
      case 'uint8':
      case 'bool':
        typed = raw;
        break;
      default: {
        // 16-bit floats: widen to float32 here, then cast to the stored dtype natively.
        const u16 = new Uint16Array(raw.buffer);
        const f32 = new Float32Array(numel);
        for (let i = 0; i < numel; i++) f32[i] = code.dtype === 'bfloat16' ? bf16(u16[i]) : f16(u16[i]);
        typed = f32;
      }
    }
    tensors[key] = new Tensor(addon.fromTypedArray(typed, shape, code.dtype, device));
  }
  return { tensors, metadata };
}

export function load(bytes: Uint8Array, opts: { device?: Device } = {}): Record<string, Tensor> {
  return loadWithMetadata(bytes, { device: readOptions('safetensors.load', opts, ['device'], { optional: true }).deviceOr('device', 'cpu') }).tensors;
}

export function loadFile(file: string, opts: { device?: Device } = {}): Record<string, Tensor> {
  return loadFileWithMetadata(file, opts).tensors;
}

export function loadFileWithMetadata(file: string, opts: { device?: Device } = {}): Loaded {
  const device = readOptions('safetensors.loadFile', opts, ['device'], { optional: true }).deviceOr('device', 'cpu');
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new SafetensorsError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return loadWithMetadata(bytes, { device, name: file });
}

function bf16(h: number): number {
  const b = new Uint32Array([h << 16]);
  return new Float32Array(b.buffer)[0];
}

function f16(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}
