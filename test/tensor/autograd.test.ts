/**
 * torch.autograd.grad and backward({ createGraph }): PyTorch's semantics (closed-form derivatives
 * checked exactly), and bad input refused with an error naming the value. Double backward through the
 * layers against PyTorch is test/nn/double-backward.test.ts.
 */
import * as torch from '../../ts/tensor/torch';

const { grad } = torch.autograd;

describe('torch.autograd.grad', () => {
  it('returns d out / d input without touching .grad; createGraph makes it differentiable again', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2, 3], { requiresGrad: true });
      const y = x.pow(3).sum();
      const [g] = grad(y, x, { createGraph: true });
      expect(g.tolist()).toEqual([3, 12, 27]); // 3x^2
      expect(g.requiresGrad).toBe(true);
      expect(x.grad).toBeNull();
      const [gg] = grad(g.sum(), [x]);
      expect(gg.tolist()).toEqual([6, 12, 18]); // 6x
      expect(gg.requiresGrad).toBe(false);
      // without createGraph the gradient is a constant
      const [h] = grad(x.pow(3).sum(), x);
      expect(h.requiresGrad).toBe(false);
    });
  });

  it('takes several outputs and inputs, weighted by gradOutputs (null: implicit, for a scalar)', () => {
    torch.scope(() => {
      const a = torch.tensor([1, 2], { requiresGrad: true });
      const b = torch.tensor([3, 4], { requiresGrad: true });
      const v = a.mul(b); // [3, 8]
      const s = a.sum();
      const [ga, gb] = grad([v, s], [a, b], { gradOutputs: [torch.tensor([1, 10]), null] });
      expect(ga.tolist()).toEqual([3 + 1, 40 + 1]); // b * w + 1
      expect(gb.tolist()).toEqual([1, 20]); // a * w
      // one output, one gradOutput as a Tensor
      const [gc] = grad(a.mul(a), a, { gradOutputs: torch.tensor([1, 1]) });
      expect(gc.tolist()).toEqual([2, 4]);
    });
  });

  it('allowUnused gives null for an input the outputs do not depend on; without it the error names the input', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      const unused = torch.tensor([5], { requiresGrad: true });
      const [gx, gu] = grad(x.pow(2).sum(), [x, unused], { allowUnused: true });
      expect(gx!.tolist()).toEqual([2, 4]);
      expect(gu).toBeNull();
      expect(() => grad(x.pow(2).sum(), [x, unused])).toThrow(
        'autograd.grad: One of the differentiated Tensors appears to not have been used in the graph: inputs[1] (shape [1]). Set allowUnused: true if this is the desired behavior.',
      );
    });
  });

  it('retainGraph defaults to createGraph: the graph is freed after one call unless kept', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      const y = x.pow(3).sum();
      grad(y, x);
      expect(() => grad(y, x)).toThrow(/Trying to backward through the graph a second time/);
      const z = x.pow(3).sum();
      grad(z, x, { retainGraph: true });
      expect(grad(z, x)[0].tolist()).toEqual([3, 12]);
      const w = x.pow(3).sum();
      grad(w, x, { createGraph: true });
      expect(grad(w, x)[0].tolist()).toEqual([3, 12]);
      const u = x.pow(3).sum();
      grad(u, x, { createGraph: true, retainGraph: false });
      expect(() => grad(u, x)).toThrow(/second time/);
    });
  });

  it('refuses outputs and inputs outside the graph, non-scalar outputs without gradOutputs and mismatched shapes, in PyTorch’s words', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2, 3], { requiresGrad: true });
      const c = torch.tensor([1, 2, 3]);
      expect(() => grad(x.pow(2).sum(), [x, c])).toThrow('autograd.grad: One of the differentiated Tensors does not require grad: inputs[1] (shape [3])');
      expect(() => grad(c.sum(), x)).toThrow('autograd.grad: element 0 of outputs does not require grad and does not have a grad_fn');
      expect(() => grad([x.sum(), c.sum()], x)).toThrow('autograd.grad: element 1 of outputs does not require grad');
      expect(() => grad(x.mul(2), x)).toThrow(
        'autograd.grad: grad can be implicitly created only for scalar outputs, got outputs[0] of shape [3] (give gradOutputs)',
      );
      expect(() => grad(x.mul(2), x, { gradOutputs: torch.ones([2]) })).toThrow(
        'autograd.grad: Mismatch in shape: gradOutputs[0] has a shape of [2] and outputs[0] has a shape of [3]',
      );
      expect(() => grad(x.sum(), x, { gradOutputs: [] })).toThrow('autograd.grad: got 1 outputs and 0 gradOutputs');
      expect(() => grad(x.sum(), [])).toThrow('autograd.grad: grad requires non-empty inputs');
      expect(() => grad([], x)).toThrow('autograd.grad: outputs is empty');
    });
  });

  it('refuses unknown options, wrong types and disposed tensors, naming the value', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      const y = () => x.pow(2).sum();
      expect(() => grad(y(), x, { createGrph: true } as never)).toThrow(
        'autograd.grad: unknown option "createGrph": did you mean createGraph? (options: gradOutputs, retainGraph, createGraph, allowUnused)',
      );
      expect(() => grad(y(), x, { createGraph: 'yes' } as never)).toThrow(new TypeError('autograd.grad: createGraph: expected a boolean, got "yes"'));
      expect(() => grad(y(), x, { allowUnused: 1 } as never)).toThrow(new TypeError('autograd.grad: allowUnused: expected a boolean, got 1'));
      expect(() => grad(y(), x, 5 as never)).toThrow(TypeError);
      expect(() => grad(y(), [x, 3] as never)).toThrow(new TypeError('autograd.grad: inputs[1]: expected a Tensor, got 3'));
      expect(() => grad('loss' as never, x)).toThrow(new TypeError('autograd.grad: outputs: expected a Tensor or an array of Tensors, got "loss"'));
      expect(() => grad(y(), x, { gradOutputs: [1] as never })).toThrow(new TypeError('autograd.grad: gradOutputs[0]: expected a Tensor or null, got 1'));
      const gone = torch.tensor([1], { requiresGrad: true });
      gone.dispose();
      expect(() => grad(y(), [x, gone])).toThrow('autograd.grad: inputs[1] was disposed and cannot be used again');
    });
  });
});

describe('Tensor.backward', () => {
  it('createGraph leaves a differentiable .grad (retainGraph follows it); without it .grad is a constant', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2, 3], { requiresGrad: true });
      const y = x.pow(3).sum();
      y.backward(null, { createGraph: true });
      const g = x.grad!;
      expect(g.tolist()).toEqual([3, 12, 27]);
      expect(g.requiresGrad).toBe(true);
      y.backward(); // the graph was retained
      expect(x.grad!.tolist()).toEqual([6, 24, 54]);
      const [gg] = grad(g.sum(), x);
      expect(gg.tolist()).toEqual([6, 12, 18]);
      const z = torch.tensor([2], { requiresGrad: true });
      z.pow(2).sum().backward();
      expect(z.grad!.requiresGrad).toBe(false);
    });
  });

  it('refuses unknown options and a gradient that is not a Tensor', () => {
    torch.scope(() => {
      const x = torch.tensor([1, 2], { requiresGrad: true });
      expect(() =>
        x
          .pow(2)
          .sum()
          .backward(null, { retain: true } as never),
      ).toThrow('backward: unknown option "retain" (options: retainGraph, createGraph)');
      expect(() =>
        x
          .pow(2)
          .sum()
          .backward(3 as never),
      ).toThrow(new TypeError('backward: gradient: expected a Tensor or null, got 3'));
      expect(() =>
        x
          .pow(2)
          .sum()
          .backward(null, { createGraph: 1 } as never),
      ).toThrow(new TypeError('backward: createGraph: expected a boolean, got 1'));
    });
  });
});
