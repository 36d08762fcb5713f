/**
 * safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header { name: { dtype, shape, data_offsets } , __metadata__ }, then raw
 * little-endian data. The format is small enough to read and write here; files we write load in
 * Python's safetensors.torch.load_file and the reverse (tested).
 */
import * as fs from 'node:fs';
import { loadAddon } from '../native/addon';
import { writeFileAtomic } from '../util/fs';
import { checkDevice, type Device, type DType } from './dtype';
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

/** Parses safetensors bytes; `name` is used in error messages. */
export function loadWithMetadata(bytes: Uint8Array, opts: { device?: Device; name?: string } = {}): Loaded {
  const name = opts.name ?? '<buffer>';
  const device = checkDevice(opts.device ?? 'cpu');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8) throw new SafetensorsError(name, `file is ${buf.length} bytes, too short for a safetensors header`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(buf.length - 8))
    throw new SafetensorsError(name, `header length ${n} exceeds the file size (${buf.length} bytes): not a safetensors file, or truncated`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + Number(n)).toString('utf8'));
  } catch (e) {
    throw new SafetensorsError(name, `header is not valid JSON (${(e as Error).message})`);
  }
  const dataStart = 8 + Number(n);
  const dataLen = buf.length - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const tensors: Record<string, Tensor> = {};
  const addon = loadAddon();
  for (const [key, v] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const info = v as { dtype?: string; shape?: number[]; data_offsets?: [number, number] };
    const code = info.dtype ? CODES[info.dtype] : undefined;
    if (!code)
      throw new SafetensorsError(name, `tensor ${key} has unsupported dtype ${JSON.stringify(info.dtype)} (supported: ${Object.keys(CODES).join(', ')})`);
    const [b, e] = info.data_offsets ?? [-1, -1];
    if (!(b >= 0 && e >= b && e <= dataLen))
      throw new SafetensorsError(name, `tensor ${key} has data offsets [${b}, ${e}] outside the data (${dataLen} bytes): truncated or corrupt`);
    const shape = info.shape ?? [];
    const numel = shape.reduce((a, c) => a * c, 1);
    if (numel * code.bytes !== e - b)
      throw new SafetensorsError(name, `tensor ${key}: shape [${shape}] of ${info.dtype} needs ${numel * code.bytes} bytes, the file has ${e - b}`);
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
  return loadWithMetadata(bytes, opts).tensors;
}

export function loadFile(file: string, opts: { device?: Device } = {}): Record<string, Tensor> {
  return loadFileWithMetadata(file, opts).tensors;
}

export function loadFileWithMetadata(file: string, opts: { device?: Device } = {}): Loaded {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new SafetensorsError(file, `cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return loadWithMetadata(bytes, { ...opts, name: file });
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
