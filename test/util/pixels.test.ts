import { findPython, runPython } from '../helpers/python';
import { toFloat32, toUint8 } from '../../ts/util/pixels';

const ALL = Uint8Array.from({ length: 256 }, (_, i) => i);
const bits = (f: Float32Array) => Array.from(new Uint32Array(f.buffer, f.byteOffset, f.length));

/** Deterministic float32 values in [-1.5, 1.5] plus edge cases. */
function probeFloats(): Float32Array {
  const v: number[] = [-2, -1.5, -1, -0.999, -0.5, 0, 1e-8, 0.5, 0.999, 1, 1.5, 2, NaN];
  let s = 12345;
  for (let i = 0; i < 2000; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    v.push((s / 2 ** 32) * 3 - 1.5);
  }
  return Float32Array.from(v);
}

describe('toFloat32', () => {
  it('[0,1] is x / 255 in float32', () => {
    const y = toFloat32(ALL, '[0,1]');
    expect(y).toBeInstanceOf(Float32Array);
    expect(y[0]).toBe(0);
    expect(y[255]).toBe(1);
    for (let x = 0; x < 256; x++) expect(y[x]).toBe(Math.fround(x / 255));
  });

  it('[-1,1] is ((x / 255) - 0.5) / 0.5 in float32', () => {
    const y = toFloat32(ALL, '[-1,1]');
    expect(y[0]).toBe(-1);
    expect(y[255]).toBe(1);
    expect(y[128]).toBe(Math.fround(Math.fround(Math.fround(128 / 255) - 0.5) / 0.5));
    expect(y[127]!).toBeLessThan(0);
    expect(y[128]!).toBeGreaterThan(0);
    for (let x = 1; x < 256; x++) expect(y[x]!).toBeGreaterThan(y[x - 1]!);
  });

  it('maps every pixel of an image buffer and fills `out`', () => {
    const img = Uint8Array.from([0, 255, 51, 0, 255, 102]);
    const out = new Float32Array(6);
    expect(toFloat32(img, '[0,1]', out)).toBe(out);
    expect(Array.from(out)).toEqual([0, 1, Math.fround(0.2), 0, 1, Math.fround(0.4)]);
    expect(() => toFloat32(img, '[0,1]', new Float32Array(5))).toThrow(/length 5, expected 6/);
    expect(() => toFloat32(img, '[0,2]' as never)).toThrow(/pixel range: expected '\[-1,1\]' or '\[0,1\]', got "\[0,2\]"/);
  });
});

describe('toUint8', () => {
  it('inverts toFloat32 exactly for every pixel value, both ranges', () => {
    expect(Array.from(toUint8(toFloat32(ALL, '[-1,1]'), '[-1,1]'))).toEqual(Array.from(ALL));
    expect(Array.from(toUint8(toFloat32(ALL, '[0,1]'), '[0,1]'))).toEqual(Array.from(ALL));
  });

  it('clamps out-of-range values and maps NaN to 0', () => {
    expect(Array.from(toUint8(Float32Array.from([-5, 5, NaN, 0]), '[-1,1]'))).toEqual([0, 255, 0, 128]);
    expect(Array.from(toUint8(Float32Array.from([-5, 5, 0.5]), '[0,1]'))).toEqual([0, 255, 128]);
  });
});

const py = findPython(['torch']);
const itTorch = py ? it : it.skip;
if (!py) console.warn('normalize PyTorch parity skipped: no Python with torch (set PYTHON or create .venv)');

describe('bit-for-bit parity with PyTorch (torchvision ToTensor + Normalize / save_image arithmetic)', () => {
  itTorch('toFloat32 and toUint8 match torch float32 results', () => {
    const probes = probeFloats();
    const script = `
import sys, torch
probes = torch.frombuffer(bytearray(bytes.fromhex(sys.stdin.read().strip())), dtype=torch.float32)
x = torch.arange(256, dtype=torch.uint8).repeat(64)          # long enough for the vectorised kernels
unit = x.to(dtype=torch.float32).div(255)                     # ToTensor()
pm1 = unit.clone().sub_(0.5).div_(0.5)                        # Normalize((0.5,), (0.5,))
def save_image_bytes(t, low, high):                           # make_grid(normalize=True) + save_image
    t = t.clone().clamp_(min=low, max=high)
    t.sub_(low).div_(max(high - low, 1e-5))
    return t.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
finite = probes[~probes.isnan()]
for t in (unit[:256], pm1[:256]):
    print(' '.join('%08x' % (v & 0xffffffff) for v in t.view(torch.int32).tolist()))
assert torch.equal(unit.view(64, 256), unit[:256].expand(64, 256)) and torch.equal(pm1.view(64, 256), pm1[:256].expand(64, 256))
print(' '.join(map(str, save_image_bytes(finite, -1.0, 1.0).tolist())))
print(' '.join(map(str, save_image_bytes(finite * 0.5 + 0.5, 0.0, 1.0).tolist())))
`;
    const hex = Buffer.from(probes.buffer).toString('hex');
    const lines = runPython(py!, ['-c', script], { input: hex }).trim().split('\n');
    const hexOf = (f: Float32Array) =>
      bits(f)
        .map((b) => b.toString(16).padStart(8, '0'))
        .join(' ');
    expect(hexOf(toFloat32(ALL, '[0,1]'))).toBe(lines[0]);
    expect(hexOf(toFloat32(ALL, '[-1,1]'))).toBe(lines[1]);

    const finite = probes.filter((v) => !Number.isNaN(v));
    expect(Array.from(toUint8(finite, '[-1,1]')).join(' ')).toBe(lines[2]);
    const unitProbes = finite.map((v) => Math.fround(Math.fround(v * 0.5) + 0.5));
    expect(Array.from(toUint8(unitProbes, '[0,1]')).join(' ')).toBe(lines[3]);
  });
});
