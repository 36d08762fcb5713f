/**
 * Double backward through every layer, activation and loss of the library (issue 25): on a small model
 * of each kind, the gradient penalty ||d out / d x||^2 (torch.autograd.grad with createGraph, then
 * backward into the model's parameters) equals PyTorch's: the penalty, the input gradient d out / d x,
 * the penalty's gradient with respect to x and every parameter's gradient. Both sides build the model
 * after manual_seed(seed) (bit-for-bit init), then draw x, the dropout masks in forward, then the
 * cotangent (or the loss target) in that order from the same generator.
 *
 * Tolerance: the same ATen kernels run on both sides, one thread each; here every value came out bit for
 * bit equal. The bound, 2e-5 of the largest magnitude of each reference tensor (a few float32 ulps of
 * it), leaves room for a summation order that differs on another CPU (vector width) and nothing more.
 */
import * as nn from '../../ts/nn/index';
import { type Module } from '../../ts/nn/module';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';
import { type Nested, relDiff } from '../helpers/compare';

const py = findPython(['torch']);
const withTorch = py ? describe : describe.skip;

const REL_TOL = 2e-5;

type Loss = 'none' | 'bceWithLogits' | 'bce' | 'mse';

// name -> [seed, model (Python), model (TypeScript), input shape, loss]
const CASES: Record<string, [number, string, () => Module, number[], Loss]> = {
  linearTanh: [1, 'S(L(4, 6), nn.Tanh(), L(6, 1))', () => new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 1)), [5, 4], 'none'],
  leakySigmoid: [
    2,
    'S(L(4, 6), nn.LeakyReLU(0.2), L(6, 3), nn.Sigmoid())',
    () => new nn.Sequential(new nn.Linear(4, 6), new nn.LeakyReLU(0.2), new nn.Linear(6, 3), new nn.Sigmoid()),
    [5, 4],
    'none',
  ],
  reluDropout: [
    3,
    'S(L(4, 8), nn.ReLU(), nn.Dropout(0.3), L(8, 8), nn.Dropout(0.5), nn.Tanh(), L(8, 1))',
    () =>
      new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Dropout(0.3), new nn.Linear(8, 8), new nn.Dropout(0.5), new nn.Tanh(), new nn.Linear(8, 1)),
    [6, 4],
    'none',
  ],
  batchNorm1d: [
    4,
    'S(L(4, 6), nn.BatchNorm1d(6), nn.LeakyReLU(0.2), L(6, 1))',
    () => new nn.Sequential(new nn.Linear(4, 6), new nn.BatchNorm1d(6), new nn.LeakyReLU(0.2), new nn.Linear(6, 1)),
    [8, 4],
    'none',
  ],
  conv2d: [
    5,
    'S(nn.Conv2d(2, 3, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), L(27, 1))',
    () => new nn.Sequential(new nn.Conv2d(2, 3, 3, { stride: 2, padding: 1 }), new nn.LeakyReLU(0.2), new nn.Flatten(), new nn.Linear(27, 1)),
    [2, 2, 5, 5],
    'none',
  ],
  batchNorm2d: [
    6,
    'S(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), L(36, 1))',
    () => new nn.Sequential(new nn.Conv2d(2, 4, 3), new nn.BatchNorm2d(4), new nn.Tanh(), new nn.Flatten(), new nn.Linear(36, 1)),
    [3, 2, 5, 5],
    'none',
  ],
  convTranspose2d: [
    7,
    'S(L(3, 8), nn.Unflatten(1, (2, 2, 2)), nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1), nn.BatchNorm2d(3), nn.Tanh(), nn.Flatten(), L(48, 2))',
    () =>
      new nn.Sequential(
        new nn.Linear(3, 8),
        new nn.Unflatten(1, [2, 2, 2]),
        new nn.ConvTranspose2d(2, 3, 4, { stride: 2, padding: 1 }),
        new nn.BatchNorm2d(3),
        new nn.Tanh(),
        new nn.Flatten(),
        new nn.Linear(48, 2),
      ),
    [4, 3],
    'none',
  ],
  bceWithLogits: [
    8,
    'S(L(4, 6), nn.Tanh(), L(6, 1))',
    () => new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 1)),
    [5, 4],
    'bceWithLogits',
  ],
  bce: [
    9,
    'S(L(4, 6), nn.Tanh(), L(6, 1), nn.Sigmoid())',
    () => new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 1), new nn.Sigmoid()),
    [5, 4],
    'bce',
  ],
  mse: [10, 'S(L(4, 6), nn.Tanh(), L(6, 2))', () => new nn.Sequential(new nn.Linear(4, 6), new nn.Tanh(), new nn.Linear(6, 2)), [5, 4], 'mse'],
};

const REFERENCE = `
import json, torch
torch.set_num_threads(1)
nn = torch.nn
S, L = nn.Sequential, nn.Linear
LOSSES = {'bceWithLogits': nn.BCEWithLogitsLoss(), 'bce': nn.BCELoss(), 'mse': nn.MSELoss()}
out = {}
for name, (seed, model, xshape, loss) in json.loads(input()).items():
    torch.manual_seed(seed)
    m = eval(model)
    x = torch.randn(*xshape).requires_grad_(True)
    y = m(x)
    if loss == 'none':
        (g,) = torch.autograd.grad(y, x, grad_outputs=torch.randn_like(y), create_graph=True)
    else:
        (g,) = torch.autograd.grad(LOSSES[loss](y, torch.rand_like(y)), x, create_graph=True)
    penalty = g.pow(2).sum()
    penalty.backward()
    out[name] = {'penalty': penalty.item(), 'g': g.tolist(), 'xgrad': x.grad.tolist(),
                 'grads': {n: None if p.grad is None else p.grad.tolist() for n, p in m.named_parameters()}}
print(json.dumps(out))
`;

interface CaseRef {
  penalty: number;
  g: Nested;
  xgrad: Nested;
  grads: Record<string, Nested | null>; // null: the penalty does not depend on it (a last layer's bias)
}

function lossOf(kind: Loss, y: Tensor, target: Tensor): Tensor {
  if (kind === 'bceWithLogits') return new nn.BCEWithLogitsLoss().call(y, target);
  if (kind === 'bce') return new nn.BCELoss().call(y, target);
  return new nn.MSELoss().call(y, target);
}

withTorch('double backward: a gradient penalty through each layer, activation and loss equals PyTorch’s', () => {
  let ref: Record<string, CaseRef>;
  beforeAll(() => {
    torch.setNumThreads(1);
    const input = Object.fromEntries(Object.entries(CASES).map(([k, [seed, model, , shape, loss]]) => [k, [seed, model, shape, loss]]));
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE], { input: `${JSON.stringify(input)}\n` }));
  });

  it.each(Object.keys(CASES))('%s', (name) => {
    const [seed, , make, shape, loss] = CASES[name];
    const r = ref[name];
    torch.scope(() => {
      torch.manualSeed(seed);
      const m = make();
      const x = torch.randn(shape).requiresGrad_();
      const y = m.forward(x);
      const [g] =
        loss === 'none'
          ? torch.autograd.grad(y, x, { gradOutputs: torch.randnLike(y), createGraph: true })
          : torch.autograd.grad(lossOf(loss, y, torch.rand(y.shape)), x, { createGraph: true });
      expect(g.requiresGrad).toBe(true);
      const penalty = g.pow(2).sum();
      penalty.backward();
      expect(Math.abs(penalty.item() - r.penalty) / Math.max(Math.abs(r.penalty), 1e-30)).toBeLessThan(REL_TOL);
      expect(relDiff(g, r.g)).toBeLessThan(REL_TOL);
      expect(relDiff(x.grad!, r.xgrad)).toBeLessThan(REL_TOL);
      const params = m.namedParameters();
      expect(params.map(([n]) => n)).toEqual(Object.keys(r.grads));
      // a parameter the penalty does not reach has no gradient on either side
      expect(params.filter(([, p]) => p.grad === null).map(([n]) => n)).toEqual(Object.keys(r.grads).filter((n) => r.grads[n] === null));
      const diffs = params.filter(([n]) => r.grads[n] !== null).map(([n, p]) => [n, relDiff(p.grad!, r.grads[n]!)] as const);
      expect(diffs.length).toBeGreaterThan(0);
      for (const [n, d] of diffs) expect({ n, ok: d < REL_TOL, d }).toEqual({ n, ok: true, d });
    });
  });
});
