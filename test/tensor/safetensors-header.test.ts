/**
 * Hostile safetensors headers, written byte by byte: every malformed header is a SafetensorsError
 * naming the file and the key (never a TypeError, a silent skip, or a replaced prototype), and the
 * layout rules are the reference implementation's (Python's safetensors rejects the same files).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findPython, runPython } from '../helpers/python';
import * as safetensors from '../../ts/tensor/safetensors';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-st-header-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const py = findPython(['torch', 'safetensors']);
const itPy = py ? it : it.skip;

/** An 8-byte little-endian header length, the header text as given, then `dataBytes` bytes of data. */
function fileWith(name: string, header: string, dataBytes = 0): string {
  const text = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  const data = Buffer.alloc(dataBytes, 0x3f);
  const file = path.join(dir, `${name}.safetensors`);
  fs.writeFileSync(file, Buffer.concat([len, text, data]));
  return file;
}

const f32 = (shape: unknown, offsets: unknown) => ({ dtype: 'F32', shape, data_offsets: offsets });

// [case, header, data bytes, the message after "<file>: "]
const cases: [string, string, number, string][] = [
  ['null', 'null', 0, 'header: expected a JSON object { <tensor name>: { dtype, shape, data_offsets }, __metadata__? }, got null'],
  ['number', '42', 0, 'header: expected a JSON object { <tensor name>: { dtype, shape, data_offsets }, __metadata__? }, got 42'],
  ['array', '[]', 0, 'header: expected a JSON object { <tensor name>: { dtype, shape, data_offsets }, __metadata__? }, got []'],
  ['entry null', '{"w":null}', 0, 'tensor "w": expected an object { dtype, shape, data_offsets }, got null'],
  ['entry string', '{"w":"x"}', 0, 'tensor "w": expected an object { dtype, shape, data_offsets }, got "x"'],
  [
    'data_offsets a number',
    JSON.stringify({ w: f32([1], 5) }),
    4,
    'tensor "w": data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got 5',
  ],
  [
    'data_offsets missing',
    JSON.stringify({ w: { dtype: 'F32', shape: [1] } }),
    4,
    'tensor "w": data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got nothing',
  ],
  [
    'data_offsets negative',
    JSON.stringify({ w: f32([1], [-4, 0]) }),
    4,
    'tensor "w": data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got [-4,0]',
  ],
  [
    'data_offsets reversed',
    JSON.stringify({ w: f32([1], [4, 0]) }),
    4,
    'tensor "w": data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got [4,0]',
  ],
  [
    'data_offsets of three',
    JSON.stringify({ w: f32([1], [0, 4, 8]) }),
    4,
    'tensor "w": data_offsets: expected [begin, end], two integers with 0 <= begin <= end, got [0,4,8]',
  ],
  ['shape a string', JSON.stringify({ w: f32('abc', [0, 4]) }), 4, 'tensor "w": shape: expected an array of integers >= 0, got "abc"'],
  ['shape negative', JSON.stringify({ w: f32([-1, -4], [0, 16]) }), 16, 'tensor "w": shape: expected an array of integers >= 0, got [-1,-4]'],
  ['shape fractional', JSON.stringify({ w: f32([1.5], [0, 4]) }), 4, 'tensor "w": shape: expected an array of integers >= 0, got [1.5]'],
  ['shape missing', JSON.stringify({ w: { dtype: 'F32', data_offsets: [0, 4] } }), 4, 'tensor "w": shape: expected an array of integers >= 0, got nothing'],
  [
    'dtype unknown',
    JSON.stringify({ w: { dtype: 'Q4', shape: [1], data_offsets: [0, 4] } }),
    4,
    'tensor "w": dtype: expected one of F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL, got "Q4"',
  ],
  [
    'dtype an inherited name',
    JSON.stringify({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }),
    4,
    'tensor "w": dtype: expected one of F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL, got "toString"',
  ],
  [
    '__proto__ tensor',
    `{"__proto__":${JSON.stringify(f32([1], [0, 4]))}}`,
    4,
    'header: key "__proto__" is not allowed (it names the prototype of a JavaScript object)',
  ],
  [
    '__proto__ in the metadata',
    `{"__metadata__":{"__proto__":"x"}}`,
    0,
    '__metadata__: key "__proto__" is not allowed (it names the prototype of a JavaScript object)',
  ],
  ['metadata not an object', '{"__metadata__":5}', 0, '__metadata__: expected an object of strings, got 5'],
  ['metadata value not a string', '{"__metadata__":{"epoch":3}}', 0, '__metadata__."epoch": expected a string, got 3'],
  [
    'offsets past the data',
    JSON.stringify({ w: f32([100], [0, 400]) }),
    4,
    'tensor "w": data_offsets [0, 400] reach past the end of the data (4 bytes): truncated or corrupt',
  ],
  [
    'dtype x shape differs from the offsets',
    JSON.stringify({ w: f32([3], [0, 8]) }),
    8,
    'tensor "w": shape [3] of F32 needs 12 bytes, its data_offsets [0, 8] hold 8',
  ],
  [
    'overlapping tensors',
    JSON.stringify({ a: f32([2], [0, 8]), b: f32([2], [4, 12]) }),
    12,
    'tensor "b": data_offsets [4, 12] overlap those of tensor "a" [0, 8]',
  ],
  [
    'a gap between tensors',
    JSON.stringify({ a: f32([1], [0, 4]), b: f32([1], [8, 12]) }),
    12,
    'tensor "b": data_offsets [8, 12] leave bytes 4..8 unused (the tensors\' data must be back to back)',
  ],
  [
    'data after the last tensor',
    JSON.stringify({ a: f32([1], [0, 4]) }),
    8,
    "the tensors' data ends at byte 4, the file has 8 bytes of data: truncated or corrupt",
  ],
];

describe('safetensors: malformed headers are errors naming the file and the key', () => {
  it.each(cases)('%s', (name, header, dataBytes, message) => {
    const file = fileWith(name.replace(/\W+/g, '-'), header, dataBytes);
    let err: unknown;
    try {
      safetensors.loadFile(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(safetensors.SafetensorsError);
    expect((err as Error).message).toBe(`${file}: ${message}`);
  });

  itPy('agrees with the reference (Python safetensors): what it rejects is rejected here, what it takes (metadata null too) loads', () => {
    const files = cases
      .filter(([name]) => !name.startsWith('__proto__')) // JavaScript's own hazard; Python has no prototypes
      .map(([name, header, dataBytes]) => fileWith(`py-${name.replace(/\W+/g, '-')}`, header, dataBytes));
    const valid = fileWith('py-valid', JSON.stringify({ __metadata__: { a: 'b' }, x: f32([1], [0, 4]), y: f32([0], [4, 4]), z: f32([2], [4, 12]) }), 12);
    const noMetadata = fileWith('py-metadata-null', `{"__metadata__":null,"w":${JSON.stringify(f32([1], [0, 4]))}}`, 4);
    const out = runPython(py!, [
      '-c',
      'import sys\nfrom safetensors.torch import load_file\nfor f in sys.argv[1:]:\n  try:\n    load_file(f); print("ok")\n  except Exception:\n    print("rejected")',
      ...files,
      valid,
      noMetadata,
    ]);
    expect(out.trim().split('\n')).toEqual([...files.map(() => 'rejected'), 'ok', 'ok']);
    const ours = files.map((f) => {
      try {
        safetensors.loadFile(f);
        return 'ok';
      } catch (e) {
        return e instanceof safetensors.SafetensorsError ? 'rejected' : `${(e as Error).name}: ${(e as Error).message}`;
      }
    });
    expect(ours).toEqual(files.map(() => 'rejected'));
    const back = safetensors.loadFileWithMetadata(valid);
    expect(Object.keys(back.tensors).sort()).toEqual(['x', 'y', 'z']);
    expect(back.tensors.y.shape).toEqual([0]);
    expect(back.metadata).toEqual({ a: 'b' });
    const none = safetensors.loadFileWithMetadata(noMetadata);
    expect(none.metadata).toEqual({});
    expect(none.tensors.w.shape).toEqual([1]);
  });

  it('the loaders read their options as every public function does', () => {
    const bytes = safetensors.save({ w: torch.ones([1]) });
    expect(() => safetensors.load(bytes, { devcie: 'cpu' } as never)).toThrow(
      new TypeError('safetensors.load: unknown option "devcie": did you mean device? (options: device)'),
    );
    expect(() => safetensors.load(bytes, { device: 'gpu' as never })).toThrow(/safetensors\.load: device: expected .*, got "gpu"/);
    expect(safetensors.load(bytes, { device: 'cpu' }).w.shape).toEqual([1]);
  });

  it('save refuses the reserved names', () => {
    expect(() => safetensors.save({ __metadata__: torch.ones([1]) })).toThrow('safetensors.save: tensor name "__metadata__" is reserved');
    const tricky: Record<string, Tensor> = {};
    Object.defineProperty(tricky, '__proto__', { value: torch.ones([1]), enumerable: true }); // an own key, as JSON.parse makes
    expect(() => safetensors.save(tricky)).toThrow('safetensors.save: tensor name "__proto__" is reserved');
  });
});

describe('safetensors.saveFile to a folder', () => {
  it.each(['target.safetensors', 'target.safetensors/'])('%s: an error naming the folder, which is kept, and no temporary file anywhere', (name) => {
    const parent = path.join(dir, `save-to-folder-${name.length}`);
    const target = path.join(parent, 'target.safetensors');
    fs.mkdirSync(target, { recursive: true });
    fs.writeFileSync(path.join(target, 'inside'), 'x');
    const given = path.join(parent, name);
    expect(() => safetensors.saveFile({ w: torch.ones([2]) }, given)).toThrow(`cannot write ${given}: it is a folder (EISDIR)`);
    expect(fs.readdirSync(parent)).toEqual(['target.safetensors']);
    expect(fs.readdirSync(target)).toEqual(['inside']);
  });
});
