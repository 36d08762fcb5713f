/**
 * nn.utils.parametrizations.spectralNorm against torch.nn.utils.parametrizations.spectral_norm (issue 25):
 * after the same manual_seed, the registered u and v, then three optimizer steps of a two-forward loss (as
 * D(real) and D(fake) in a GAN step) on Linear, Conv2d and ConvTranspose2d in training and eval mode: the
 * loss, every gradient, u and v at each step and the state dict at the end. State dicts go both ways
 * through safetensors and torch.save files. A gradient penalty through spectral-normed layers (double
 * backward). Bad input and use with the rest of the library: spectral-norm-use.test.ts.
 *
 * Tolerance: both sides run the same ATen kernels on one thread, in the same order, and the values came
 * out bit for bit equal here. The bound, 2e-5 of the largest magnitude of each reference tensor (a few
 * float32 ulps of it), leaves room for a summation order that differs on another CPU and nothing more.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as nn from '../../ts/nn/index';
import { type Module } from '../../ts/nn/module';
import { layerTypeOf } from '../../ts/nn/spec';
import * as optim from '../../ts/optim/index';
import * as safetensors from '../../ts/tensor/safetensors';
import { type Tensor } from '../../ts/tensor/tensor';
import { loadPytorch, savePytorch } from '../../ts/tensor/torch-save';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';
import { type Nested, relDiff } from '../helpers/compare';

const py = findPython(['torch', 'safetensors']);
const withTorch = py ? describe : describe.skip;
const { spectralNorm } = nn.utils.parametrizations;
const { isParametrized, removeParametrizations } = nn.utils.parametrize;

const REL_TOL = 2e-5;

interface Case {
  seed: number;
  /** the module, in Python (nn.*) */
  py: string;
  make: () => Module;
  /** spectral_norm's keyword arguments, in Python's names and ours */
  opts: { name?: string; nPowerIterations?: number; eps?: number; dim?: number };
  xshape: number[];
  train: boolean;
  optimizer: 'sgd' | 'adam';
  /** spectral norm applied twice (a second parametrization appended to the first) */
  twice?: boolean;
}

const CASES: Record<string, Case> = {
  linear: { seed: 1, py: 'nn.Linear(5, 7)', make: () => new nn.Linear(5, 7), opts: {}, xshape: [4, 5], train: true, optimizer: 'sgd' },
  linearEval: { seed: 2, py: 'nn.Linear(6, 3)', make: () => new nn.Linear(6, 3), opts: {}, xshape: [4, 6], train: false, optimizer: 'sgd' },
  linearIters: {
    seed: 3,
    py: 'nn.Linear(8, 4, bias=False)',
    make: () => new nn.Linear(8, 4, { bias: false }),
    opts: { nPowerIterations: 3, eps: 1e-6 },
    xshape: [5, 8],
    train: true,
    optimizer: 'adam',
  },
  linearBias: { seed: 4, py: 'nn.Linear(3, 5)', make: () => new nn.Linear(3, 5), opts: { name: 'bias' }, xshape: [2, 3], train: true, optimizer: 'sgd' },
  conv2d: {
    seed: 5,
    py: 'nn.Conv2d(3, 4, 3, stride=2, padding=1)',
    make: () => new nn.Conv2d(3, 4, 3, { stride: 2, padding: 1 }),
    opts: {},
    xshape: [2, 3, 6, 6],
    train: true,
    optimizer: 'adam',
  },
  conv2dEval: { seed: 6, py: 'nn.Conv2d(2, 5, 3)', make: () => new nn.Conv2d(2, 5, 3), opts: {}, xshape: [2, 2, 5, 5], train: false, optimizer: 'adam' },
  conv2dDim1: { seed: 7, py: 'nn.Conv2d(3, 2, 2)', make: () => new nn.Conv2d(3, 2, 2), opts: { dim: 1 }, xshape: [2, 3, 4, 4], train: true, optimizer: 'sgd' },
  convTranspose2d: {
    seed: 8,
    py: 'nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1)',
    make: () => new nn.ConvTranspose2d(3, 2, 4, { stride: 2, padding: 1 }),
    opts: {},
    xshape: [2, 3, 3, 3],
    train: true,
    optimizer: 'adam',
  },
  convTranspose2dEval: {
    seed: 9,
    py: 'nn.ConvTranspose2d(4, 3, 3)',
    make: () => new nn.ConvTranspose2d(4, 3, 3),
    opts: { dim: -4 },
    xshape: [1, 4, 3, 3],
    train: false,
    optimizer: 'sgd',
  },
  buffer: {
    seed: 11,
    py: '(lambda m: (m.register_buffer("scale", torch.randn(3, 4)), m)[1])(nn.Linear(4, 3))',
    make: () => {
      const m = new nn.Linear(4, 3);
      m.registerBuffer('scale', torch.randn([3, 4]));
      return m;
    },
    opts: { name: 'scale' },
    xshape: [2, 4],
    train: true,
    optimizer: 'sgd',
  },
  linearTwice: { seed: 10, py: 'nn.Linear(4, 6)', make: () => new nn.Linear(4, 6), opts: {}, xshape: [3, 4], train: true, optimizer: 'adam', twice: true },
};

const PY_NAMES = { name: 'name', nPowerIterations: 'n_power_iterations', eps: 'eps', dim: 'dim' } as const;

// Registration (after manual_seed(seed), in the case's mode), then x1, x2 drawn; three steps of
// loss = mean(m(x1)^2) - mean(m(x2)), backward, step.
const REFERENCE = `
import json, sys, torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
torch.set_num_threads(1)
out = {}
for name, c in json.loads(sys.stdin.readline()).items():
    torch.manual_seed(c['seed'])
    m = eval(c['py'])
    if not c['train']:
        m.eval()
    m = spectral_norm(m, **c['opts'])
    if c.get('twice'):
        m = spectral_norm(m, **c['opts'])
    sd = lambda: {k: v.tolist() for k, v in m.state_dict().items()}
    r = {'keys': list(m.state_dict().keys()), 'params': [n for n, _ in m.named_parameters()], 'repr': str(m), 'init': sd(), 'steps': []}
    x1, x2 = torch.randn(*c['xshape']), torch.randn(*c['xshape'])
    opt = torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) if c['optimizer'] == 'sgd' else torch.optim.Adam(m.parameters(), lr=0.01)
    for _ in range(3):
        loss = m(x1).pow(2).mean() - m(x2).mean()
        opt.zero_grad()
        loss.backward()
        r['steps'].append({'loss': loss.item(), 'grads': {n: p.grad.tolist() for n, p in m.named_parameters()},
                           'buffers': {n: b.tolist() for n, b in m.named_buffers()}})
        opt.step()
    r['final'] = sd()
    r['weight'] = getattr(m, c['opts'].get('name', 'weight')).tolist()
    torch.nn.utils.parametrize.remove_parametrizations(m, c['opts'].get('name', 'weight'))
    r['removed'] = sd()
    r['removedKeys'] = list(m.state_dict().keys())
    r['removedRepr'] = str(m)
    out[name] = r
print(json.dumps(out))
`;

interface CaseRef {
  keys: string[];
  params: string[];
  repr: string;
  init: Record<string, Nested>;
  steps: { loss: number; grads: Record<string, Nested>; buffers: Record<string, Nested> }[];
  final: Record<string, Nested>;
  weight: Nested;
  removed: Record<string, Nested>;
  removedKeys: string[];
  removedRepr: string;
}

function expectClose(what: string, t: Tensor, ref: Nested): void {
  const d = relDiff(t, ref);
  expect({ what, ok: d < REL_TOL, d }).toEqual({ what, ok: true, d });
}

function build(c: Case): Module {
  torch.manualSeed(c.seed);
  const m = c.make();
  if (!c.train) m.eval();
  spectralNorm(m, c.opts);
  return c.twice ? spectralNorm(m, c.opts) : m;
}

withTorch('spectralNorm equals PyTorch’s spectral_norm', () => {
  let ref: Record<string, CaseRef>;
  beforeAll(() => {
    torch.setNumThreads(1);
    const input = Object.fromEntries(
      Object.entries(CASES).map(([k, c]) => [
        k,
        { ...c, make: undefined, opts: Object.fromEntries(Object.entries(c.opts).map(([o, v]) => [PY_NAMES[o as keyof typeof PY_NAMES], v])) },
      ]),
    );
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE], { input: `${JSON.stringify(input)}\n` }));
  });

  it.each(Object.keys(CASES))('%s: registration, three optimizer steps, state dict', (name) => {
    const c = CASES[name];
    const r = ref[name];
    torch.scope(() => {
      const m = build(c);
      const sd0 = m.stateDict();
      expect(Object.keys(sd0)).toEqual(r.keys);
      expect(m.namedParameters().map(([n]) => n)).toEqual(r.params);
      for (const k of r.keys) expectClose(`init ${k}`, sd0[k], r.init[k]);
      const [x1, x2] = [torch.randn(c.xshape), torch.randn(c.xshape)];
      const params = m.parameters();
      const opt = c.optimizer === 'sgd' ? new optim.SGD(params, { lr: 0.1, momentum: 0.9 }) : new optim.Adam(params, { lr: 0.01 });
      r.steps.forEach((s, i) => {
        const loss = m.call(x1).pow(2).mean().sub(m.call(x2).mean());
        opt.zeroGrad();
        loss.backward();
        expect(Math.abs(loss.item() - s.loss) / Math.max(Math.abs(s.loss), 1e-30)).toBeLessThan(REL_TOL);
        for (const [n, p] of m.namedParameters()) expectClose(`step ${i} grad ${n}`, p.grad!, s.grads[n]);
        const buffers = m.namedBuffers();
        expect(buffers.map(([n]) => n)).toEqual(Object.keys(s.buffers));
        for (const [n, b] of buffers) expectClose(`step ${i} ${n}`, b, s.buffers[n]);
        opt.step();
      });
      const sd = m.stateDict();
      for (const k of r.keys) expectClose(`final ${k}`, sd[k], r.final[k]);
      const name = c.opts.name ?? 'weight';
      expectClose('the parametrized tensor', (m as unknown as Record<string, Tensor>)[name], r.weight);
      // removed: the tensor a plain parameter again, the same Tensor object as original (optimizers keep it)
      const original = (m as nn.utils.parametrize.Parametrized<Module>).parametrizations[name].original;
      removeParametrizations(m, name);
      expect(isParametrized(m)).toBe(false);
      expect(m.constructor).toBe(c.make().constructor);
      expect(m.toString()).toBe(r.removedRepr.replace(/=True/g, '=true').replace(/=False/g, '=false'));
      const removed = m.stateDict();
      expect(Object.keys(removed)).toEqual(r.removedKeys);
      for (const k of r.removedKeys) expectClose(`removed ${k}`, removed[k], r.removed[k]);
      const isBuffer = name === 'scale';
      expect((isBuffer ? m._buffers : m._parameters).get(name)).toBe(original);
      if (!isBuffer) expect(params).toContain(original);
    });
  });

  it("prints as PyTorch's repr (but for the parametrization's class name and JavaScript's booleans)", () => {
    const m = build(CASES.linear);
    expect(m.toString()).toBe(ref.linear.repr.replace('_SpectralNorm', 'SpectralNorm').replace('bias=True', 'bias=true'));
    expect(m.constructor.name).toBe('ParametrizedLinear');
    expect(m).toBeInstanceOf(nn.Linear);
    expect(nn.utils.parametrize.typeBeforeParametrizations(m)).toBe(nn.Linear);
    expect(layerTypeOf(m)).toBe('Linear'); // what the layer registry sees
  });
});

// Python -> here: a trained spectral-normed Conv2d's state dict in both file formats, and its outputs.
// Here -> Python: ours (a ConvTranspose2d after two training-mode forwards) loaded by PyTorch, strictly.
const FROM_PYTHON = `
import json, sys, torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from safetensors.torch import save_file
torch.set_num_threads(1)
d, x = sys.argv[1], torch.tensor(json.loads(sys.stdin.readline()))
torch.manual_seed(11)
m = spectral_norm(nn.Conv2d(3, 4, 3))
opt = torch.optim.Adam(m.parameters(), lr=0.05)
for _ in range(2):
    opt.zero_grad(); m(x).pow(2).mean().backward(); opt.step()
save_file(m.state_dict(), d + '/py.safetensors')
torch.save(m.state_dict(), d + '/py.pt')
with torch.no_grad():
    m.eval(); y_eval = m(x)
    m.train(); y_train = m(x)
print(json.dumps({'eval': y_eval.tolist(), 'train': y_train.tolist(), 'u': m.parametrizations.weight[0]._u.tolist()}))
`;
const TO_PYTHON = `
import json, sys, torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
from safetensors.torch import load_file
torch.set_num_threads(1)
d, x = sys.argv[1], torch.tensor(json.loads(sys.stdin.readline()))
out = {}
for f, sd in [('safetensors', load_file(d + '/ts.safetensors')), ('pt', torch.load(d + '/ts.pt', weights_only=True))]:
    m = spectral_norm(nn.ConvTranspose2d(2, 3, 4, stride=2))
    m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        out[f] = {'keys': list(sd.keys()), 'eval': m.eval()(x).tolist(), 'v': m.parametrizations.weight[0]._v.tolist()}
print(json.dumps(out))
`;

withTorch('spectralNorm state dicts round-trip with PyTorch', () => {
  let dir: string;
  beforeAll(() => {
    torch.setNumThreads(1);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spectral-norm-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a PyTorch state dict (safetensors and torch.save) loads strictly and gives its outputs', () => {
    torch.scope(() => {
      torch.manualSeed(21);
      const x = torch.randn([2, 3, 5, 5]);
      const r = JSON.parse(runPython(py!, ['-c', FROM_PYTHON, dir], { input: `${JSON.stringify(x.tolist())}\n` }));
      for (const sd of [safetensors.loadFile(path.join(dir, 'py.safetensors')), loadPytorch(path.join(dir, 'py.pt'))]) {
        torch.manualSeed(99); // another init: every value must come from the file
        const m = spectralNorm(new nn.Conv2d(3, 4, 3));
        expect(m.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
        torch.noGrad(() => {
          expectClose('eval output', m.eval().call(x), r.eval);
          expectClose('train output', m.train().call(x), r.train);
        });
        expectClose('u after a training forward', m.parametrizations.weight.at(0)._buffers.get('_u')!, r.u);
      }
    });
  });

  it('ours (safetensors and torch.save) loads strictly into PyTorch’s and gives our outputs', () => {
    torch.scope(() => {
      torch.manualSeed(22);
      const m = spectralNorm(new nn.ConvTranspose2d(2, 3, 4, { stride: 2 }));
      const x = torch.randn([1, 2, 3, 3]);
      m.call(x);
      m.call(x); // u and v move on from their registration values
      const sd = m.stateDict();
      safetensors.saveFile(sd, path.join(dir, 'ts.safetensors'));
      savePytorch(sd, path.join(dir, 'ts.pt'));
      const y = torch.noGrad(() => m.eval().call(x));
      const r = JSON.parse(runPython(py!, ['-c', TO_PYTHON, dir], { input: `${JSON.stringify(x.tolist())}\n` }));
      for (const f of ['safetensors', 'pt']) {
        expect(r[f].keys.sort()).toEqual(Object.keys(sd).sort());
        expectClose(`${f}: eval output`, y, r[f].eval);
        expectClose(`${f}: v`, sd['parametrizations.weight.0._v'], r[f].v);
      }
    });
  });
});

// A gradient penalty through a spectral-normed D (R1 or WGAN-GP on an SNGAN-style D): double backward.
const PENALTY = `
import json, torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm
torch.set_num_threads(1)
torch.manual_seed(31)
m = nn.Sequential(spectral_norm(nn.Conv2d(2, 3, 3)), nn.LeakyReLU(0.2), nn.Flatten(), spectral_norm(nn.Linear(27, 1)))
x = torch.randn(2, 2, 5, 5).requires_grad_(True)
(g,) = torch.autograd.grad(m(x).sum(), x, create_graph=True)
penalty = g.pow(2).sum()
penalty.backward()
print(json.dumps({'penalty': penalty.item(), 'grads': {n: None if p.grad is None else p.grad.tolist() for n, p in m.named_parameters()}}))
`;

withTorch('spectralNorm under double backward', () => {
  it('a gradient penalty through spectral-normed layers gives PyTorch’s penalty and parameter gradients', () => {
    torch.setNumThreads(1);
    const r = JSON.parse(runPython(py!, ['-c', PENALTY]));
    torch.scope(() => {
      torch.manualSeed(31);
      const m = new nn.Sequential(spectralNorm(new nn.Conv2d(2, 3, 3)), new nn.LeakyReLU(0.2), new nn.Flatten(), spectralNorm(new nn.Linear(27, 1)));
      const x = torch.randn([2, 2, 5, 5]).requiresGrad_();
      const [g] = torch.autograd.grad(m.call(x).sum(), x, { createGraph: true });
      const penalty = g.pow(2).sum();
      penalty.backward();
      expect(Math.abs(penalty.item() - r.penalty) / Math.abs(r.penalty)).toBeLessThan(REL_TOL);
      const params = m.namedParameters();
      expect(params.map(([n]) => n)).toEqual(Object.keys(r.grads));
      // the last layer's bias does not reach the penalty: no gradient on either side
      expect(params.filter(([, p]) => p.grad === null).map(([n]) => n)).toEqual(['3.bias']);
      expect(r.grads['3.bias']).toBeNull();
      for (const [n, p] of params) if (p.grad) expectClose(`grad ${n}`, p.grad, r.grads[n]);
    });
  });
});
