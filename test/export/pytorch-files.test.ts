/**
 * PyTorch checkpoints in and out. In: a G state_dict that PyTorch saved (torch.save, an OrderedDict with
 * its _metadata) from the seeds' own module classes (seed 004's hidden0 ... out blocks, seed 001's fc1 ...
 * fc4) samples here the images PyTorch's module gives for the same z; hostile, truncated and misfitting
 * files are errors naming the global, the archive or the key. Files made to break the reader (storage
 * records shorter than their tensors, views out of their storage, deep nesting, deflate bombs) are refused
 * as torch.load(weights_only=True) refuses them, and what it reads (views, shared storages, every dtype,
 * big-endian and deflated records, CUDA-saved storages, ints beyond 32 bits) is read the same. Out:
 * `export --pytorch` is read by torch.load(weights_only=True) and holds the run's weights.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { presets } from '../../ts/gan/presets';
import { generate } from '../../ts/gan/sample';
import { loadGeneratorModule } from '../../ts/store/generator';
import { type Tensor } from '../../ts/tensor/tensor';
import { loadPytorch, savePytorch } from '../../ts/tensor/torch-save';
import * as torch from '../../ts/tensor/torch';
import { runCli, tinyRun } from '../helpers/lib';
import { findPython, runPython } from '../helpers/python';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-pt-'));
const cli = path.resolve(__dirname, '..', '..', 'lib', 'cli', 'main.js');
const py = findPython(['torch', 'safetensors']);
const N = 6;

// The seeds' own generator classes (as their scripts define them), saved with torch.save(G.state_dict());
// G(z) in eval mode for z = torch.randn(N, 100) after manual_seed(3), as float32 bytes.
const SAVE = `
import sys, torch, torch.nn as nn, torch.nn.functional as F
class Seed004Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden0 = nn.Sequential(nn.Linear(100, 256), nn.LeakyReLU(0.2))
        self.hidden1 = nn.Sequential(nn.Linear(256, 512), nn.LeakyReLU(0.2))
        self.hidden2 = nn.Sequential(nn.Linear(512, 1024), nn.LeakyReLU(0.2))
        self.out = nn.Sequential(nn.Linear(1024, 784), nn.Tanh())
    def forward(self, x):
        return self.out(self.hidden2(self.hidden1(self.hidden0(x))))
class Seed001Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(100, 32); self.fc2 = nn.Linear(32, 64); self.fc3 = nn.Linear(64, 128); self.fc4 = nn.Linear(128, 784)
        self.dropout = nn.Dropout(0.3)
    def forward(self, x):
        x = self.dropout(F.leaky_relu(self.fc1(x), 0.2))
        x = self.dropout(F.leaky_relu(self.fc2(x), 0.2))
        x = self.dropout(F.leaky_relu(self.fc3(x), 0.2))
        return torch.tanh(self.fc4(x))
out = sys.argv[1]
for name, cls in [('vanilla', Seed004Generator), ('udacity', Seed001Generator)]:
    torch.manual_seed(1)
    G = cls().eval()
    torch.save(G.state_dict(), f'{out}/{name}.pth')
    torch.manual_seed(3)
    z = torch.randn(${N}, 100)
    z.numpy().tofile(f'{out}/{name}.z')
    with torch.no_grad():
        G(z).numpy().tofile(f'{out}/{name}.images')
`;

// Files made to break the reader, and what torch.load(weights_only=True, map_location='cpu') makes of
// each (verdict.json): refused with its error, or read, with each tensor's dtype, shape and values.
const CRAFT = String.raw`
import collections, io, json, os, pickle, struct, sys, zipfile, zlib
import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

class Storage:  # a persistent id as torch.save writes it
    def __init__(self, key, numel, type=torch.FloatStorage, location='cpu'):
        self.pid = ('storage', type, key, location, numel)

class View:  # a tensor as _rebuild_tensor_v2 (or fn) rebuilds it
    def __init__(self, storage, offset, size, stride, extra=(), fn=torch._utils._rebuild_tensor_v2):
        self.fn, self.args = fn, (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict()) + tuple(extra)
    def __reduce__(self):
        return (self.fn, self.args)

class Pickler(pickle.Pickler):
    def persistent_id(self, o):
        return o.pid if isinstance(o, Storage) else None

def dumps(obj):
    b = io.BytesIO()
    Pickler(b, protocol=2).dump(obj)
    return b.getvalue()

def rawzip(path, records):
    """A zip of records: name -> bytes (stored) or (deflate stream, crc32, size) (deflated)."""
    with open(path, 'wb') as f:
        cd = b''
        for name, rec in records.items():
            data, crc, size, method = (rec[0], rec[1], rec[2], 8) if isinstance(rec, tuple) else (rec, zlib.crc32(rec), len(rec), 0)
            n, off = name.encode(), f.tell()
            f.write(struct.pack('<IHHHHHIIIHH', 0x04034b50, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0) + n + data)
            cd += struct.pack('<IHHHHHHIIIHHHHHII', 0x02014b50, 20, 20, 0, method, 0, 0x21, crc, len(data), size, len(n), 0, 0, 0, 0, 0, off) + n
        at = f.tell()
        f.write(cd + struct.pack('<IHHHHIIH', 0x06054b50, 0, 0, len(records), len(records), len(cd), at, 0))

def craft(name, obj=None, records={}, pkl=None, byteorder=b'little'):
    recs = {'archive/data.pkl': pkl if pkl is not None else dumps(obj), 'archive/byteorder': byteorder}
    recs.update({f'archive/data/{k}': v for k, v in records.items()})
    recs['archive/version'] = b'3\n'
    rawzip(f'{out}/{name}', recs)

def records_of(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i.filename) for i in z.infolist()}

def floats(n):
    return torch.arange(n, dtype=torch.float32).numpy().tobytes()

S = Storage
# storage records shorter than the tensors they back (torch.load: "record size ... does not match")
craft('short.pth', {'w': View(S('0', 1000), 0, (100, 10), (10, 1))}, {'0': floats(10)})
craft('huge.pth', {'w': View(S('0', 1 << 28), 0, (1 << 28,), (1,))}, {'0': floats(10)})
craft('missing.pth', {'w': View(S('7', 10), 0, (10,), (1,))}, {'0': floats(10)})
# views reaching out of their storage (torch.load: set_ refuses them)
craft('past-end.pth', {'w': View(S('0', 10), 0, (20,), (1,))}, {'0': floats(10)})
craft('offset-past-end.pth', {'w': View(S('0', 10), 8, (5,), (1,))}, {'0': floats(10)})
craft('stride-past-end.pth', {'w': View(S('0', 10), 0, (4, 3), (3, 5))}, {'0': floats(10)})
craft('overflow.pth', {'w': View(S('0', 10), 0, (1 << 62, 4), (4, 1))}, {'0': floats(10)})
craft('negative-stride.pth', {'w': View(S('0', 10), 2, (3,), (-1,))}, {'0': floats(10)})
craft('negative-offset.pth', {'w': View(S('0', 10), -1, (2,), (1,))}, {'0': floats(10)})
# views torch.load reads: strided, expanded (stride 0) and shared storages; _rebuild_tensor_v3
craft('views.pth', {'a': View(S('0', 12), 1, (3, 2), (4, 2)), 'b': View(S('0', 12), 0, (12,), (1,)), 'c': View(S('0', 12), 5, (2, 2), (0, 1)),
                    'd': View(S('1', 40, torch.UntypedStorage), 2, (2, 4), (1, 2), (torch.float32,), torch._utils._rebuild_tensor_v3)},
      {'0': floats(12), '1': floats(10)})
# ints beyond 2^31 (LONG1): an empty view of a huge shape, and _metadata's ints
od = collections.OrderedDict(z=View(S('0', 0), 1 << 40, (0, 1 << 40), (1 << 40, 1)), w=View(S('1', 3), 0, (3,), (1,)))
od._metadata = {'': {'version': -(1 << 40), 'big': (1 << 63) - 1}}
craft('big-ints.pth', od, {'0': b'', '1': floats(3)})

# files PyTorch writes
torch.manual_seed(0)
dtypes = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool]
sd = collections.OrderedDict()
for dt in dtypes:
    x = torch.randn(3, 4) * 50
    sd[str(dt)[6:]] = x > 0 if dt == torch.bool else x.to(dt)
sd['transposed'] = torch.randn(4, 3).t()
sd['sliced'] = torch.randn(5, 6)[1:4, ::2]
torch.save(sd, f'{out}/dtypes.pth')
# the same records, byte-swapped under a byteorder record saying "big"
recs = records_of(f'{out}/dtypes.pth')
for key, t in enumerate(sd.values()):
    e = t.element_size()
    name = f'dtypes/data/{key}'
    recs[name] = bytes(torch.frombuffer(bytearray(recs[name]), dtype=torch.uint8).reshape(-1, e).flip(1).reshape(-1).numpy().tobytes()) if e > 1 else recs[name]
recs['dtypes/byteorder'] = b'big'
rawzip(f'{out}/big-endian.pth', recs)
# deflated records (zip tools may re-compress a file)
with zipfile.ZipFile(f'{out}/deflated.pth', 'w', zipfile.ZIP_DEFLATED) as z:
    for name, data in records_of(f'{out}/dtypes.pth').items():
        z.writestr(name, data)
torch.save({'z': torch.zeros(100000)}, f'{out}/zeros.pth')
with zipfile.ZipFile(f'{out}/zeros-deflated.pth', 'w', zipfile.ZIP_DEFLATED) as z:
    for name, data in records_of(f'{out}/zeros.pth').items():
        z.writestr(name, data)
# a state_dict saved from CUDA: storage location 'cuda:0'
g = collections.OrderedDict(weight=torch.randn(2, 3), bias=torch.randn(2))
torch.save(g, f'{out}/cpu.pth')
recs = records_of(f'{out}/cpu.pth')
recs['cpu/data.pkl'] = recs['cpu/data.pkl'].replace(b'X\x03\x00\x00\x00cpu', b'X\x06\x00\x00\x00cuda:0')
rawzip(f'{out}/cuda.pth', recs)
# a Parameter, a tensor with attributes (_rebuild_from_type_v2), a negated view (metadata {'neg': True})
torch.save({'p': torch.nn.Parameter(torch.randn(3))}, f'{out}/parameter.pth')
t = torch.randn(3)
t.note = 'kept by torch.load, dropped here'
torch.save({'t': t}, f'{out}/attributes.pth')
torch.save({'n': torch._neg_view(torch.randn(4))}, f'{out}/neg.pth')
torch.save({'w': torch.randn(3)}, f'{out}/protocol4.pth', pickle_protocol=4)
# what is not a flat state_dict of supported dtypes
torch.save({'model': g}, f'{out}/nested.pth')
torch.save([torch.randn(2)], f'{out}/list.pth')
torch.save({'c': torch.zeros(2, dtype=torch.complex64)}, f'{out}/complex.pth')
torch.save({'u': torch.zeros(2, dtype=torch.uint16)}, f'{out}/uint16.pth')
torch.save(g, f'{out}/legacy.pth', _use_new_zipfile_serialization=False)
# a pickle nesting lists 200,000 deep (400 KB)
N = 200000
craft('deep.pth', pkl=b'\x80\x02}X\x01\x00\x00\x00w' + b']' * N + b'a' * (N - 1) + b's.')
craft('marks.pth', pkl=b'\x80\x02' + b'(' * 300 + b'N.')
# a pickle made to take memory: 1 MiB of EMPTY_LIST, deflated to 1 KB
lists = b'\x80\x02' + b']' * (1 << 20)
craft('lists.pth', pkl=(zlib.compress(lists, 9)[2:-4], zlib.crc32(lists), len(lists)))
# deflate bombs: 1.5 GB of zeros in 1.5 MB, as data.pkl and as a storage the pickle says is 10 floats
piece = zlib.compressobj(9, zlib.DEFLATED, -15)
piece = piece.compress(bytes(1 << 24)) + piece.flush(zlib.Z_FULL_FLUSH)
crc = 0
for _ in range(96):
    crc = zlib.crc32(bytes(1 << 24), crc)
bomb = (piece * 96 + b'\x03\x00', crc, 96 << 24)
craft('bomb-pickle.pth', pkl=bomb)
craft('bomb-record.pth', {'w': View(S('0', 10), 0, (10,), (1,))}, {'0': bomb})

# what torch.load(weights_only=True, map_location='cpu') makes of each (the bombs aside)
verdict = {}
for f in sorted(os.listdir(out)):
    if f.startswith('bomb') or not f.endswith('.pth'):
        continue
    try:
        got = torch.load(f'{out}/{f}', weights_only=True, map_location='cpu')
        verdict[f] = {'ok': True, 'tensors': {k: {'dtype': str(v.dtype)[6:], 'shape': list(v.shape), 'values': v.reshape(-1).double().tolist()}
                                              for k, v in got.items() if isinstance(v, torch.Tensor)} if isinstance(got, dict) else {}}
    except Exception as e:
        verdict[f] = {'ok': False, 'error': (str(e).splitlines() or [type(e).__name__])[0][:300]}
json.dump(verdict, open(f'{out}/verdict.json', 'w'))
`;

interface Verdict {
  ok: boolean;
  error?: string;
  tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
}

const floats = (file: string) => {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
};

(py ? describe : describe.skip)('PyTorch checkpoints', () => {
  beforeAll(() => runPython(py!, ['-c', SAVE, dir]));

  test.each(['vanilla', 'udacity'])("%s: the seed's own module classes' state_dict samples PyTorch's images", (name) => {
    const preset = presets[name as 'vanilla' | 'udacity'];
    const G = loadGeneratorModule(path.join(dir, `${name}.pth`), preset, 'cpu');
    const z = torch.tensor(floats(path.join(dir, `${name}.z`)).slice(), [N, 100]);
    const ours = generate(G, z, 'cpu');
    const theirs = floats(path.join(dir, `${name}.images`));
    expect(ours.length).toBe(theirs.length);
    let max = 0;
    for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i] - theirs[i]));
    expect(max).toBeLessThan(1e-5);
    z.dispose();
    G.dispose();
  });

  test('sample --checkpoint G.pth --preset vanilla writes the grid; a file without --preset is refused', () => {
    const out = path.join(dir, 'grid.png');
    const r = spawnSync(
      process.execPath,
      [cli, 'sample', '--checkpoint', path.join(dir, 'vanilla.pth'), '--preset', 'vanilla', '--out', out, '--count', '16'],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(fs.readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
    const bad = spawnSync(process.execPath, [cli, 'sample', '--checkpoint', path.join(dir, 'vanilla.pth')], { encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('is a file: give the preset whose generator it holds');
  });

  test("a state_dict that fits no preset's generator: an error naming the key and the shapes", () => {
    expect(() => loadGeneratorModule(path.join(dir, 'udacity.pth'), presets.vanilla, 'cpu')).toThrow(
      "'fc1.weight' float32 [32, 100] does not fit the generator's '0.weight' float32 [256, 100] (tensor 1 of 8",
    );
    expect(() => loadGeneratorModule(path.join(dir, 'vanilla.pth'), presets.ganist, 'cpu')).toThrow(/holds 8 tensors .* but the generator has \d+/);
  });

  test('a hostile pickle (a global that would run code) is refused, not run; a truncated file is an error', () => {
    const evil = path.join(dir, 'evil.pth');
    const marker = path.join(dir, 'pwned');
    runPython(py!, [
      '-c',
      `
import pickle, sys, zipfile
class Evil:
    def __reduce__(self):
        import os
        return (os.system, ('touch ' + sys.argv[2],))
with zipfile.ZipFile(sys.argv[1], 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'w': Evil()}, protocol=2))
    z.writestr('archive/version', '3\\n')
`,
      evil,
      marker,
    ]);
    expect(() => loadPytorch(evil)).toThrow(
      /evil\.pth: data\.pkl, byte \d+: the pickle names the global posix\.system, which is not a tensor, storage or container type: refused .*nothing was run/,
    );
    expect(fs.existsSync(marker)).toBe(false);
    const cut = path.join(dir, 'cut.pth');
    fs.writeFileSync(cut, fs.readFileSync(path.join(dir, 'vanilla.pth')).subarray(0, 1000));
    expect(() => loadPytorch(cut)).toThrow(/cut\.pth: not a torch\.save file \(not a zip archive: no end of central directory record\)/);
  });

  test('arguments that are not a path or a state_dict: TypeErrors naming them', () => {
    const file = path.join(dir, 'vanilla.pth');
    expect(() => loadPytorch(null as unknown as string)).toThrow(new TypeError('loadPytorch: file must be a path (a non-empty string), got null'));
    expect(() => loadPytorch(undefined as unknown as string)).toThrow(new TypeError('loadPytorch: file must be a path (a non-empty string), got undefined'));
    expect(() => savePytorch(null as unknown as Record<string, Tensor>, path.join(dir, 'x.pth'))).toThrow(
      new TypeError('savePytorch: stateDict: expected an object of Tensors by name (module.stateDict()), got null'),
    );
    expect(() => savePytorch({}, undefined as unknown as string)).toThrow(
      new TypeError('savePytorch: file: expected the path to write (a non-empty string), got undefined'),
    );
    expect(() => loadPytorch(file, { maxBytes: 0 })).toThrow(new RangeError('loadPytorch: maxBytes: expected an integer >= 1, got 0'));
    expect(() => loadPytorch(file, { device: 'tpu' as 'cpu' })).toThrow(new TypeError("loadPytorch: device: expected 'cpu', 'cuda' or 'cuda:N', got \"tpu\""));
    expect(fs.existsSync(path.join(dir, 'x.pth'))).toBe(false);
  });

  describe('files made to break the reader', () => {
    const craft = path.join(dir, 'craft');
    const file = (f: string) => path.join(craft, f);
    let verdict: Record<string, Verdict> = {};
    beforeAll(() => {
      runPython(py!, ['-c', CRAFT, craft]);
      verdict = JSON.parse(fs.readFileSync(file('verdict.json'), 'utf8'));
    }, 60_000);

    // each crashed the process (SIGSEGV) or read heap garbage before this reader
    test.each([
      ['short.pth', "'w': its storage record 'data/0' holds 40 bytes, but the pickle says 1000 float32 elements (4000 bytes); torch.load refuses it too"],
      ['huge.pth', "'w': its storage record 'data/0' holds 40 bytes, but the pickle says 268435456 float32 elements (1073741824 bytes)"],
      ['missing.pth', "'w': its storage record 'data/7' is not in the archive"],
      ['past-end.pth', "'w': sizes [20], strides [1] and storage offset 0 reach past the end of its storage record 'data/0' (40 bytes of float32)"],
      ['offset-past-end.pth', "'w': sizes [5], strides [1] and storage offset 8 reach past the end of its storage record 'data/0'"],
      ['stride-past-end.pth', "'w': sizes [4, 3], strides [3, 5] and storage offset 0 reach past the end of its storage record 'data/0'"],
      ['overflow.pth', "'w': sizes [4611686018427387904, 4], strides [4, 1] and storage offset 0 overflow 64 bits"],
      ['negative-stride.pth', "'w': sizes [3], strides [-1] and storage offset 2: a negative value; torch.load refuses it too"],
      ['negative-offset.pth', "'w': sizes [2], strides [1] and storage offset -1: a negative value"],
    ])('%s: refused before any tensor memory is made, as torch.load refuses it', (f, message) => {
      expect(verdict[f].ok).toBe(false);
      expect(() => loadPytorch(file(f))).toThrow(`${file(f)}: ${message}`);
    });

    test.each(['views.pth', 'big-ints.pth', 'dtypes.pth', 'big-endian.pth', 'deflated.pth', 'cuda.pth', 'parameter.pth', 'attributes.pth', 'neg.pth'])(
      '%s: read as torch.load(weights_only=True, map_location="cpu") reads it',
      (f) => {
        const want = verdict[f];
        expect(want.ok).toBe(true);
        const sd = loadPytorch(file(f));
        expect(Object.keys(sd)).toEqual(Object.keys(want.tensors));
        for (const [k, t] of Object.entries(sd)) {
          expect([k, t.dtype, t.shape, t.device]).toEqual([k, want.tensors[k].dtype, want.tensors[k].shape, 'cpu']);
          expect(Array.from(t.toTypedArray() as ArrayLike<number | bigint>, Number)).toEqual(want.tensors[k].values);
          t.dispose();
        }
      },
    );

    test('a CUDA-saved state_dict (storage location cuda:0) loads on the CPU by default, as with map_location="cpu"', () => {
      const sd = loadPytorch(file('cuda.pth'));
      const cpu = loadPytorch(file('cpu.pth'));
      expect(Object.keys(sd)).toEqual(['weight', 'bias']);
      for (const k of Object.keys(sd)) expect(Array.from(sd[k].toFloat32Array())).toEqual(Array.from(cpu[k].toFloat32Array()));
      for (const t of [...Object.values(sd), ...Object.values(cpu)]) t.dispose();
    });

    test('pickle protocol 4 (torch.load(weights_only=True) refuses its FRAME opcode; torch.load reads it): read', () => {
      expect(verdict['protocol4.pth'].ok).toBe(false);
      const sd = loadPytorch(file('protocol4.pth'));
      expect(sd.w.shape).toEqual([3]);
      sd.w.dispose();
    });

    test.each([
      ['nested.pth', "'model' holds an OrderedDict, expected a tensor (save G.state_dict() itself, not a dict around it)"],
      ['list.pth', 'expected a state_dict (a dict of names to tensors), got a list'],
      ['complex.pth', "'c' is a torch.complex64 tensor: libtorch-gan reads float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 and bool"],
      ['uint16.pth', "'u' is a torch.uint16 tensor: libtorch-gan reads"],
      ['legacy.pth', "a legacy torch.save file (before PyTorch 1.6's zip format); re-save it with torch.save(...) from a current PyTorch"],
      ['deep.pth', 'data.pkl, byte 200264: containers nested more than 256 deep'], // 200,000 deep: it crashed the process
    ])('%s: what torch.load reads but is not a flat state_dict of our dtypes: a clear error', (f, message) => {
      expect(() => loadPytorch(file(f))).toThrow(`${file(f)}: ${message}`);
    });

    test('a pickle made to take memory is refused past 64 bytes for each of its bytes; MARKs nest 256 deep at most', () => {
      expect(() => loadPytorch(file('lists.pth'))).toThrow(
        /lists\.pth: data\.pkl, byte \d+: data\.pkl's (stack|containers) would take more than 65 MiB, 64 bytes for each byte of data\.pkl \(a state_dict's objects take about 30\): a pickle made to take memory/,
      );
      expect(() => loadPytorch(file('marks.pth'))).toThrow(`${file('marks.pth')}: data.pkl, byte 258: MARKs nested more than 256 deep`);
    });

    test("deflate bombs (1.5 GB in 1.5 MB) are refused from the zip's declared sizes, before inflating", () => {
      const before = process.resourceUsage().maxRSS;
      expect(() => loadPytorch(file('bomb-pickle.pth'))).toThrow(
        `${file('bomb-pickle.pth')}: its data.pkl is 1.5 GiB; a state_dict's pickle is about 100 bytes a tensor, and more than 16 MiB is refused unread`,
      );
      expect(() => loadPytorch(file('bomb-record.pth'))).toThrow(
        `${file('bomb-record.pth')}: 'w': its storage record 'data/0' holds 1610612736 bytes, but the pickle says 10 float32 elements (40 bytes)`,
      );
      expect(process.resourceUsage().maxRSS - before).toBeLessThan(256 * 1024); // KiB: nothing was inflated
    });

    test('maxBytes bounds what a file unpacks to, before it is allocated, and the file itself', () => {
      const f = file('zeros-deflated.pth'); // 400 KB of zeros, deflated
      expect(() => loadPytorch(f, { maxBytes: 100_000 })).toThrow(
        /zeros-deflated\.pth: the storage of 'z' \(record 'data\/0', 391 KiB\) would take the memory read so far \([\d.]+ KiB\) past maxBytes \(98 KiB\); a file you trust may be given a larger maxBytes/,
      );
      expect(() => loadPytorch(f, { maxBytes: 1000 })).toThrow(/zeros-deflated\.pth: it is \d+ bytes, more than maxBytes \(1000\)/);
      const sd = loadPytorch(f, { maxBytes: 500_000 });
      expect(sd.z.shape).toEqual([100000]);
      sd.z.dispose();
    });
  });

  test("export RUN_DIR --pytorch G.pt: torch.load(weights_only=True) reads the run's generator weights", () => {
    const runDir = tinyRun('ganist', fs.mkdtempSync(path.join(dir, 'runs-')));
    const file = path.join(dir, 'G.pt');
    const e = runCli(['export', runDir, '--pytorch', file]);
    expect(e.stderr).toBe('');
    const check = runPython(py!, [
      '-c',
      `
import sys, torch
from safetensors.torch import load_file
a = torch.load(sys.argv[1], weights_only=True)
b = load_file(sys.argv[2])
print(sorted(a) == sorted(b), all(torch.equal(a[k], b[k]) for k in b), len(a))
`,
      file,
      path.join(runDir, 'generator.safetensors'),
    ]);
    expect(check.trim()).toBe('True True 30'); // 4 blocks of Linear + BatchNorm1d (7 tensors each, running statistics included), the last Linear
  }, 60_000);
});
