// Misuse at the tensor facade's edges: each error names the bad value and the expected form.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { sample } from '../../ts/store/generator';
import * as torch from '../../ts/tensor/torch';

const TO_FORMS = "a dtype (float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool) or a device ('cpu', 'cuda', 'cuda:N')";

describe('Tensor.to', () => {
  it('an unknown string, null, a number or undefined names the value and both expected forms', () => {
    const t = torch.ones([2]);
    expect(() => t.to('tpu' as never)).toThrow(new TypeError(`Tensor.to: expected ${TO_FORMS}, got "tpu"`));
    expect(() => t.to('cuda:x' as never)).toThrow(`Tensor.to: expected ${TO_FORMS}, got "cuda:x"`);
    expect(() => t.to(null as never)).toThrow(`Tensor.to: expected ${TO_FORMS}, got null`);
    expect(() => t.to(5 as never)).toThrow(`Tensor.to: expected ${TO_FORMS}, got 5`);
    expect(() => (t.to as (x?: unknown) => unknown)()).toThrow(`Tensor.to: expected ${TO_FORMS}, got undefined`);
  });
  it('the options form checks each field and refuses unknown ones', () => {
    const t = torch.ones([2]);
    expect(() => t.to({ device: 'tpu' as never })).toThrow(`Tensor.to: device: expected 'cpu', 'cuda' or 'cuda:N', got "tpu"`);
    expect(() => t.to({ dtype: 'float99' as never })).toThrow(/Tensor\.to: dtype: expected one of float32, .* got "float99"/);
    expect(() => t.to({ dtpye: 'float64' } as never)).toThrow(new TypeError('Tensor.to: unknown option "dtpye": did you mean dtype? (options: device, dtype)'));
    expect(t.to({ dtype: 'float64' }).dtype).toBe('float64');
    expect(t.to('int32').dtype).toBe('int32');
    expect(t.to('cpu').device).toBe('cpu');
  });
});

describe('Tensor.grad assignment', () => {
  const leaf = () => torch.zeros([2, 3], { requiresGrad: true });
  it('a value that is not a Tensor throws; null and undefined clear', () => {
    const x = leaf();
    x.grad = torch.ones([2, 3]);
    expect(() => {
      x.grad = 'abc' as never;
    }).toThrow(new TypeError('assigned grad expected to be a Tensor or null but got "abc"'));
    expect(() => {
      x.grad = 0 as never;
    }).toThrow('assigned grad expected to be a Tensor or null but got 0');
    expect(() => {
      x.grad = {} as never;
    }).toThrow('assigned grad expected to be a Tensor or null but got an object');
    expect(x.grad!.tolist()).toEqual([
      [1, 1, 1],
      [1, 1, 1],
    ]);
    x.grad = null;
    expect(x.grad).toBeNull();
    x.grad = torch.ones([2, 3]);
    x.grad = undefined as never;
    expect(x.grad).toBeNull();
  });
  it('a gradient of another size, dtype or the tensor itself is refused before the native call, in PyTorch’s words', () => {
    const x = leaf();
    // count the native setGrad calls (native methods are read-only: wrap the handle instead of spying)
    let nativeCalls = 0;
    const native = x._native;
    x._native = new Proxy(native, {
      get(target, key) {
        const v = Reflect.get(target, key) as unknown;
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          if (key === 'setGrad') nativeCalls++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    expect(() => {
      x.grad = torch.zeros([3]);
    }).toThrow(
      new Error("attempting to assign a gradient of size '[3]' to a tensor of size '[2, 3]'. Please ensure that the gradient and the tensor are the same size"),
    );
    expect(() => {
      x.grad = torch.zeros([0]);
    }).toThrow(/gradient of size '\[0\]' to a tensor of size '\[2, 3\]'/);
    expect(() => {
      x.grad = torch.zeros([2, 3], { dtype: 'float64' });
    }).toThrow(
      "attempting to assign a gradient with dtype 'float64' to a tensor with dtype 'float32'. Please ensure that the gradient and the tensor have the same dtype",
    );
    expect(() => {
      x.grad = x;
    }).toThrow("can't assign a tensor as its own grad");
    const gone = torch.zeros([2, 3]);
    gone.dispose();
    expect(() => {
      x.grad = gone;
    }).toThrow('assigned grad was disposed and cannot be used');
    expect(nativeCalls).toBe(0);
    x.grad = torch.ones([2, 3]);
    expect(nativeCalls).toBe(1);
    expect(x.grad!.shape).toEqual([2, 3]);
  });
  (torch.cuda.isAvailable() ? it : it.skip)('a gradient on another device is refused', () => {
    const x = leaf();
    expect(() => {
      x.grad = torch.zeros([2, 3], { device: 'cuda' });
    }).toThrow(
      "attempting to assign a gradient with device type 'cuda' to a tensor with device type 'cpu'. Please ensure that the gradient and the tensor are on the same device",
    );
  });
});

describe('torch.tensor from BigInt', () => {
  it('BigInt elements make an exact int64 tensor, as Python ints do', () => {
    const a = torch.tensor([1n]);
    expect(a.dtype).toBe('int64');
    expect(a.tolist()).toEqual([1]);
    const big = torch.tensor([[2n ** 62n + 1n], [-(2n ** 63n)]]);
    expect(big.shape).toEqual([2, 1]);
    expect(Array.from(big.toTypedArray() as BigInt64Array)).toEqual([2n ** 62n + 1n, -(2n ** 63n)]);
    const s = torch.tensor(7n);
    expect([s.shape, s.dtype, s.item()]).toEqual([[], 'int64', 7]);
    expect(torch.tensor([3n], { dtype: 'float64' }).tolist()).toEqual([3]);
  });
  it('out of int64’s range, or mixed with numbers: an error naming the element', () => {
    expect(() => torch.tensor([1n, 2n ** 63n])).toThrow(
      new RangeError('torch.tensor: element 1 is 9223372036854775808n, outside int64 (-9223372036854775808n to 9223372036854775807n)'),
    );
    expect(() => torch.tensor(-(2n ** 64n))).toThrow(/element 0 is -18446744073709551616n, outside int64/);
    expect(() => torch.tensor([1n, 2])).toThrow(
      new TypeError('torch.tensor: element 1 is 2 but element 0 is a BigInt: give all elements as BigInt (int64) or all as numbers'),
    );
    expect(() => torch.tensor([1, 2n])).toThrow(
      'torch.tensor: element 1 is 2n but element 0 is a number: give all elements as BigInt (int64) or all as numbers',
    );
  });
});

describe('sample() options', () => {
  const FORM =
    "{ checkpoint: string, count?: number, seed?: number, device?: 'cpu' | 'cuda' | 'cuda:N', labels?: number | number[] | 'all', preset?: string, truncation?: number }";
  it('null, missing or mistyped options name the expected form', () => {
    expect(() => sample(null as never)).toThrow(new TypeError(`sample: expected options ${FORM}, got null`));
    expect(() => (sample as (o?: unknown) => unknown)()).toThrow(`sample: expected options ${FORM}, got undefined`);
    expect(() => sample('runs/run-1' as never)).toThrow(`sample: expected options ${FORM}, got "runs/run-1"`);
    expect(() => sample({} as never)).toThrow('sample: checkpoint: expected the path of a run folder (a string), got undefined');
    expect(() => sample({ checkpoint: 5 } as never)).toThrow('sample: checkpoint: expected the path of a run folder (a string), got 5');
    expect(() => sample({ checkpoint: 'x', cout: 3 } as never)).toThrow(
      'sample: unknown option "cout": did you mean count? (options: checkpoint, count, seed, device, labels, preset, truncation)',
    );
  });
  it('bad values are named before any file is read', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-sample-'));
    try {
      expect(() => sample({ checkpoint: dir, count: 0 })).toThrow(new RangeError('sample: count: expected an integer >= 1, got 0'));
      expect(() => sample({ checkpoint: dir, seed: Number.NaN })).toThrow('sample: seed: expected an integer >= 0, got NaN');
      expect(() => sample({ checkpoint: dir, seed: -1 })).toThrow('sample: seed: expected an integer >= 0, got -1');
      expect(() => sample({ checkpoint: dir, device: 'tpu' as never })).toThrow(`sample: device: expected 'cpu', 'cuda' or 'cuda:N', got "tpu"`);
      expect(() => sample({ checkpoint: dir, truncation: 0 })).toThrow(new RangeError('sample: truncation: expected a number > 0, got 0'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
