import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as safetensors from '../../ts/tensor/safetensors';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch', 'safetensors']);
const itPy = py ? it : it.skip;
// Jest runs tests in another realm: compare typed arrays by content, never with toBeInstanceOf.
const arr = (t: Tensor) => Array.from(t.toTypedArray() as ArrayLike<number>);

describe('creation', () => {
  it('tensor from typed arrays, nested arrays and numbers', () => {
    const a = torch.tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    expect(a.shape).toEqual([2, 3]);
    expect(a.dtype).toBe('float32');
    expect(a.device).toBe('cpu');
    expect(arr(a)).toEqual([1, 2, 3, 4, 5, 6]);
    const b = torch.tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: 'int64' },
    );
    expect(b.dtype).toBe('int64');
    expect(b.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(torch.tensor(2.5).item()).toBe(2.5);
    expect(torch.tensor(new Uint8Array([0, 255])).dtype).toBe('uint8');
  });
  it('factories', () => {
    expect(arr(torch.zeros([2, 2]))).toEqual([0, 0, 0, 0]);
    expect(arr(torch.ones([3]))).toEqual([1, 1, 1]);
    expect(arr(torch.full([2], 7))).toEqual([7, 7]);
    expect(torch.arange(5).tolist()).toEqual([0, 1, 2, 3, 4]);
    expect(torch.arange(5).dtype).toBe('int64');
    expect(torch.arange(0, 1, 0.25).tolist()).toEqual([0, 0.25, 0.5, 0.75]);
    const r = torch.randint(0, 10, [1000]);
    expect(r.dtype).toBe('int64');
    expect(r.max().item()).toBeLessThan(10);
    expect(r.min().item()).toBeGreaterThanOrEqual(0);
    const u = torch.rand([10000]);
    expect(u.mean().item()).toBeCloseTo(0.5, 1);
  });
  it('bad input names the value and what was expected', () => {
    expect(() => torch.zeros([2, -1])).toThrow(/shape must be an array of non-negative integers, got \[2,-1\]/);
    expect(() => torch.tensor(new Float32Array(5), [2, 3])).toThrow(/5 elements but shape \[2, 3\] needs 6/);
    expect(() => torch.tensor([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => torch.tensor([1, 'a' as unknown as number])).toThrow(/element 1 is "a", expected a number/);
    expect(() => torch.ones([2], { dtype: 'float99' as never })).toThrow(/dtype: expected one of float32/);
    expect(() => torch.ones([2], { device: 'gpu' as never })).toThrow(/device: expected 'cpu', 'cuda' or 'cuda:N', got "gpu"/);
  });
});

describe('ops match PyTorch semantics', () => {
  it('arithmetic, broadcasting, reductions, shapes', () => {
    const x = torch.tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(x.add(1).tolist()).toEqual([
      [2, 3],
      [4, 5],
    ]);
    expect(x.add(x, 2).tolist()).toEqual([
      [3, 6],
      [9, 12],
    ]);
    expect(x.sub(torch.tensor([1, 1])).tolist()).toEqual([
      [0, 1],
      [2, 3],
    ]);
    expect(x.mul(x).tolist()).toEqual([
      [1, 4],
      [9, 16],
    ]);
    expect(x.div(2).tolist()).toEqual([
      [0.5, 1],
      [1.5, 2],
    ]);
    expect(x.neg().tolist()).toEqual([
      [-1, -2],
      [-3, -4],
    ]);
    expect(x.pow(2).tolist()).toEqual([
      [1, 4],
      [9, 16],
    ]);
    expect(x.matmul(x).tolist()).toEqual([
      [7, 10],
      [15, 22],
    ]);
    expect(x.sum().item()).toBe(10);
    expect(x.mean(0).tolist()).toEqual([2, 3]);
    expect(x.sum(1, true).shape).toEqual([2, 1]);
    expect(x.view(4).shape).toEqual([4]);
    expect(x.reshape([1, 4]).shape).toEqual([1, 4]);
    expect(torch.zeros([2, 3, 4]).flatten(1).shape).toEqual([2, 12]);
    expect(torch.cat([x, x], 0).shape).toEqual([4, 2]);
    expect(torch.stack([x, x], 0).shape).toEqual([2, 2, 2]);
    expect(x.slice(1, 1, 2).tolist()).toEqual([[2], [4]]);
    expect(x.indexSelect(0, torch.tensor([1, 0], { dtype: 'int64' })).tolist()).toEqual([
      [3, 4],
      [1, 2],
    ]);
    expect(x.clamp(2, 3).tolist()).toEqual([
      [2, 2],
      [3, 3],
    ]);
    expect(x.gt(2).tolist()).toEqual([
      [0, 0],
      [1, 1],
    ]);
    expect(x.argmax().item()).toBe(3);
    expect((torch.tensor([-1, 0, 2]).leakyRelu(0.1).tolist() as number[]).map((v) => Math.round(v * 10) / 10)).toEqual([-0.1, 0, 2]);
    expect(torch.tensor([0]).sigmoid().item()).toBe(0.5);
    expect(torch.tensor([1]).log().item()).toBe(0);
    expect(x.to('float64').dtype).toBe('float64');
  });
  it('wrong shapes and types give errors naming the shapes', () => {
    const a = torch.ones([64, 100]);
    expect(() => a.matmul(torch.ones([784, 1]))).toThrow(/64x100 and 784x1/);
    const err = (() => {
      try {
        a.add('x' as unknown as number);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.name).toBe('TypeError'); // a native error from another realm: compare names, not classes
    expect(err?.message).toBe("aten::add(other): expected a Tensor, got 'x'");
    expect(() => a.view(3, 7)).toThrow(/shape '\[3, 7\]' is invalid for input of size 6400/);
    expect(() => a.item()).toThrow(/6400 elements \(shape \[64, 100\]\) cannot be converted to a number/);
  });
  it('a disposed tensor cannot be used again, and never crashes', () => {
    const t = torch.ones([3]);
    t.dispose();
    expect(t.isDisposed).toBe(true);
    expect(() => t.add(1)).toThrow(/disposed/);
    expect(() => t.shape).toThrow(/disposed/);
    expect(() => torch.ones([3]).add(t)).toThrow(/disposed/);
    t.dispose(); // twice is fine
  });
  it('Symbol.dispose and scope free deterministically', () => {
    let inner!: Tensor;
    {
      using t = torch.ones([4]);
      inner = t;
    }
    expect(inner.isDisposed).toBe(true);
    let tmp!: Tensor;
    const kept = torch.scope(() => {
      tmp = torch.ones([2]).add(1);
      return { out: tmp.mul(3) };
    });
    expect(tmp.isDisposed).toBe(true);
    expect(kept.out.tolist()).toEqual([6, 6]);
  });
});

describe('memory format', () => {
  test('contiguous({ memoryFormat: "channelsLast" }) lays [N, C, H, W] out NHWC, values unchanged', () => {
    const x = torch.arange(24).reshape([1, 2, 3, 4]);
    expect(x.isContiguous()).toBe(true);
    expect(x.isContiguous({ memoryFormat: 'channelsLast' })).toBe(false);
    const y = x.contiguous({ memoryFormat: 'channelsLast' });
    expect(y.isContiguous({ memoryFormat: 'channelsLast' })).toBe(true);
    expect(y.isContiguous()).toBe(false);
    expect(y.tolist()).toEqual(x.tolist());
    expect(y.contiguous().isContiguous()).toBe(true);
    expect(() => x.contiguous({ memoryFormat: 'nhwc' as 'channelsLast' })).toThrow(/Tensor.contiguous: memoryFormat/);
    expect(() => x.contiguous({ format: 'channelsLast' } as object)).toThrow('Tensor.contiguous: unknown option "format"');
  });
});

describe('autograd', () => {
  it('backward computes PyTorch’s gradients; noGrad stops tracking', () => {
    const w = torch.tensor([1, 2, 3], { requiresGrad: true });
    const y = w.mul(w).sum();
    y.backward();
    expect(w.grad!.tolist()).toEqual([2, 4, 6]);
    const z = torch.noGrad(() => w.mul(2));
    expect(z.requiresGrad).toBe(false);
    expect(torch.isGradEnabled()).toBe(true);
    expect(() => z.sum().backward()).toThrow(/does not require grad/);
    expect(() => w.mul(2).backward()).toThrow(/scalar outputs/);
  });
});

describe('setFlushDenormal', () => {
  it('treats denormal floats as zero when on, as torch.set_flush_denormal', () => {
    torch.setFlushDenormal(false); // another suite in this worker may have left it on
    const tiny = torch.tensor(new Float32Array([1e-39]), [1]); // a float32 denormal
    expect(tiny.mul(1).item()).toBeCloseTo(1e-39, 45);
    try {
      expect(torch.setFlushDenormal(true)).toBe(true);
      expect(torch.getFlushDenormal()).toBe(true);
      expect(tiny.mul(1).item()).toBe(0);
    } finally {
      torch.setFlushDenormal(false);
    }
    expect(tiny.mul(1).item()).toBeCloseTo(1e-39, 45);
  });
});

describe('RNG parity with PyTorch', () => {
  it('randn after manualSeed(0) equals known PyTorch values', () => {
    torch.manualSeed(0);
    const v = torch.randn([2, 3]).toFloat32Array();
    expect(Array.from(v).map((x) => Number(x.toFixed(4)))).toEqual([1.541, -0.2934, -2.1788, 0.5684, -1.0845, -1.3986]);
  });
  itPy('torch.randn([64, 100]) after manualSeed equals Python’s, bit for bit', () => {
    const ref = JSON.parse(runPython(py!, [path.join(__dirname, '..', 'parity', 'reference.py'), 'randn', '--seed', '42', '--shape', '64,100'])) as {
      values: number[];
    };
    torch.manualSeed(42);
    const ours = Array.from(torch.randn([64, 100]).toFloat32Array());
    expect(ours).toEqual(ref.values.map(Math.fround));
  });
  it('getRngState/setRngState replay the same numbers', () => {
    torch.manualSeed(7);
    const s = torch.getRngState();
    const a = torch.rand([5]).tolist();
    torch.setRngState(s);
    expect(torch.rand([5]).tolist()).toEqual(a);
  });
});

describe('safetensors', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-st-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  it('round-trips dtypes and shapes', () => {
    const f = path.join(dir, 'a.safetensors');
    safetensors.saveFile(
      {
        w: torch.tensor([
          [1, 2],
          [3, 4],
        ]),
        i: torch.tensor([5, 6], { dtype: 'int64' }),
        u: torch.tensor(new Uint8Array([7])),
      },
      f,
      { note: 'x' },
    );
    const back = safetensors.loadFileWithMetadata(f);
    expect(back.metadata).toEqual({ note: 'x' });
    expect(back.tensors.w.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(back.tensors.i.dtype).toBe('int64');
    expect(back.tensors.u.tolist()).toEqual([7]);
  });
  it('corrupt files give errors naming the file', () => {
    const f = path.join(dir, 'bad.safetensors');
    fs.writeFileSync(f, Buffer.from([1, 2, 3]));
    expect(() => safetensors.loadFile(f)).toThrow(new RegExp(`${f}: file is 3 bytes`));
    const good = safetensors.save({ w: torch.ones([4]) });
    fs.writeFileSync(f, good.subarray(0, good.length - 4));
    expect(() => safetensors.loadFile(f)).toThrow(/outside the data|truncated/);
    expect(() => safetensors.loadFile(path.join(dir, 'missing.safetensors'))).toThrow(/cannot read \(ENOENT\)/);
  });
  itPy('files we write load in Python’s safetensors, and Python’s load here', () => {
    const ours = path.join(dir, 'ours.safetensors');
    torch.manualSeed(3);
    const t = torch.randn([3, 5]);
    safetensors.saveFile({ 'layer.weight': t }, ours);
    const out = runPython(py!, [
      '-c',
      `from safetensors.torch import load_file; d = load_file(${JSON.stringify(ours)}); print(repr(float(d['layer.weight'].double().sum())), list(d['layer.weight'].shape))`,
    ]);
    const [sum, shape] = [Number(out.split(' ')[0]), out.slice(out.indexOf('['))];
    expect(sum).toBeCloseTo(t.double().sum().item(), 10);
    expect(shape.trim()).toBe('[3, 5]');
    const theirs = path.join(dir, 'theirs.safetensors');
    runPython(py!, [
      '-c',
      `import torch; from safetensors.torch import save_file; save_file({'a': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'b': torch.tensor([1, 2], dtype=torch.int64)}, ${JSON.stringify(theirs)})`,
    ]);
    const back = safetensors.loadFile(theirs);
    expect(back.a.tolist()).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    expect(back.b.dtype).toBe('int64');
  });
});
