/**
 * torch.autocast in the facade against PyTorch's (CPU, bfloat16): a linear layer, a convolution and
 * BCE-with-logits under autocast give PyTorch's dtypes and values, and fp32 gradients equal to PyTorch's;
 * a nested enabled: false region computes in fp32; the setting is per call (restored after a throw);
 * ops sent to the training thread take it along; bad arguments are refused by name.
 */
import * as F from '../../ts/nn/functional';
import * as torch from '../../ts/tensor/torch';
import { type Tensor } from '../../ts/tensor/tensor';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch']);
const describePy = py ? describe : describe.skip;

// Inputs both sides build the same way (no random draws).
const PY_INPUTS = `
import json, torch, torch.nn.functional as F
x = torch.arange(0, 2 * 8, dtype=torch.float32).reshape(2, 8).mul(0.37).tanh()
w = torch.arange(0, 4 * 8, dtype=torch.float32).reshape(4, 8).mul(0.11).sigmoid().requires_grad_()
b = torch.arange(0, 4, dtype=torch.float32).mul(0.1).requires_grad_()
img = torch.arange(0, 2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6).mul(0.05).tanh()
k = torch.arange(0, 5 * 3 * 3 * 3, dtype=torch.float32).reshape(5, 3, 3, 3).mul(0.07).sigmoid().requires_grad_()
`;
function inputs(): { x: Tensor; w: Tensor; b: Tensor; img: Tensor; k: Tensor } {
  return {
    x: torch
      .arange(0, 2 * 8)
      .reshape([2, 8])
      .mul(0.37)
      .tanh(),
    w: torch
      .arange(0, 4 * 8)
      .reshape([4, 8])
      .mul(0.11)
      .sigmoid()
      .requiresGrad_(),
    b: torch.arange(0, 4).mul(0.1).requiresGrad_(),
    img: torch
      .arange(0, 2 * 3 * 6 * 6)
      .reshape([2, 3, 6, 6])
      .mul(0.05)
      .tanh(),
    k: torch
      .arange(0, 5 * 3 * 3 * 3)
      .reshape([5, 3, 3, 3])
      .mul(0.07)
      .sigmoid()
      .requiresGrad_(),
  };
}
const list = (t: Tensor) => Array.from(t.detach().to({ dtype: 'float32' }).toTypedArray() as Float32Array);

describePy('torch.autocast against PyTorch (cpu, bfloat16)', () => {
  const want = JSON.parse(
    runPython(py!, [
      '-c',
      `${PY_INPUTS}
with torch.autocast("cpu", dtype=torch.bfloat16):
    y = F.linear(x, w, b)
    c = F.conv2d(img, k, padding=1)
    loss = F.binary_cross_entropy_with_logits(y, torch.ones_like(y)) + c.float().pow(2).mean()
    with torch.autocast("cpu", enabled=False):
        inner = F.linear(x, w, b)
loss.backward()
f = lambda t: t.detach().float().reshape(-1).tolist()
print(json.dumps({"y": f(y), "yDtype": str(y.dtype), "c": f(c), "cDtype": str(c.dtype), "loss": loss.item(), "lossDtype": str(loss.dtype),
                  "innerDtype": str(inner.dtype), "wGrad": f(w.grad), "kGrad": f(k.grad), "wGradDtype": str(w.grad.dtype)}))`,
    ]),
  );

  it('computes what PyTorch computes, in the dtypes it picks, with fp32 gradients', () => {
    torch.scope(() => {
      const { x, w, b, img, k } = inputs();
      let y!: Tensor;
      let c!: Tensor;
      let loss!: Tensor;
      let inner!: Tensor;
      torch.autocast('cpu', { dtype: 'bfloat16' }, () => {
        y = F.linear(x, w, b);
        c = F.conv2d(img, k, null, { padding: 1 });
        loss = F.binaryCrossEntropyWithLogits(y, torch.onesLike(y)).add(c.to({ dtype: 'float32' }).pow(2).mean());
        inner = torch.autocast('cpu', { enabled: false }, () => F.linear(x, w, b));
      });
      loss.backward();
      expect([y.dtype, c.dtype, inner.dtype, w.grad!.dtype]).toEqual(['bfloat16', 'bfloat16', 'float32', 'float32']);
      expect([want.yDtype, want.cDtype, want.innerDtype, want.wGradDtype]).toEqual(['torch.bfloat16', 'torch.bfloat16', 'torch.float32', 'torch.float32']);
      expect(loss.dtype).toBe(want.lossDtype.replace('torch.', ''));
      // the same kernels on the same inputs: PyTorch's bits
      expect(list(y)).toEqual(want.y);
      expect(list(c)).toEqual(want.c);
      expect(loss.item()).toBeCloseTo(want.loss, 6);
      const close = (a: number[], e: number[]) => {
        for (const [i, v] of a.entries()) expect(Math.abs(v - e[i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(e[i]!)));
      };
      close(list(w.grad!), want.wGrad);
      close(list(k.grad!), want.kGrad);
    });
  });
});

describe('torch.autocast', () => {
  it('is on inside only, restored after a throw, and taken along to the training thread', () => {
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
    expect(() =>
      torch.autocast('cpu', {}, () => {
        expect(torch.isAutocastEnabled('cpu')).toBe(true);
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
    torch.scope(() => {
      const { x, w, b } = inputs();
      const here = torch.autocast('cpu', {}, () => F.linear(x, w, b));
      const there = torch.autocast('cpu', {}, () => torch.onTrainingThread(() => F.linear(x, w, b)));
      expect(there.dtype).toBe('bfloat16');
      expect(list(there)).toEqual(list(here));
      expect(torch.onTrainingThread(() => F.linear(x, w, b)).dtype).toBe('float32');
    });
  });

  it('refuses a bad device, dtype, option or an async function, naming them', () => {
    expect(() => torch.autocast('tpu' as never, {}, () => 1)).toThrow(`autocast: deviceType: expected 'cpu' or 'cuda', got "tpu"`);
    expect(() => torch.autocast('cpu', { dtype: 'float32' }, () => 1)).toThrow(/autocast: dtype: .*"float32"/);
    expect(() => torch.autocast('cpu', { cache: true } as never, () => 1)).toThrow(/autocast: unknown option "cache"/);
    expect(() => torch.autocast('cpu', {}, (async () => 1) as never)).toThrow('autocast(fn): fn must be synchronous');
    expect(torch.isAutocastEnabled('cpu')).toBe(false);
  });
});
