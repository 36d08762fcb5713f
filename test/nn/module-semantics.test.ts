// Module conversion (all or nothing, in place), scopes and modules, optimizers across model.to(), and
// strict loadStateDict, compared with PyTorch where a value is involved.
import { BatchNorm1d } from '../../ts/nn/batchnorm';
import { Linear, Sequential } from '../../ts/nn/layers';
import { type Module } from '../../ts/nn/module';
import { Adam, type Optimizer, SGD } from '../../ts/optim/optimizer';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch']);
const itPy = py ? it : it.skip;

const W = [
  [0.1, -0.2, 0.3],
  [0.4, 0.5, -0.6],
];
const B = [0.05, -0.05];
const X = [
  [1, 2, 3],
  [-1, 0.5, 2],
];

/** Linear(3, 2) with the weights above (float32, as PyTorch's default). */
function linear(): Linear {
  const m = new Linear(3, 2);
  m.loadStateDict({ weight: torch.tensor(W), bias: torch.tensor(B) });
  return m;
}

function trainStep(m: Module, opt: Optimizer, dtype: 'float32' | 'float64'): void {
  torch.scope(() => {
    opt.zeroGrad();
    m.forward(torch.tensor(X, { dtype })).pow(2).mean().backward();
    opt.step();
  });
}

/**
 * The sequences compared with PyTorch: [optimizer, body], run on the same Linear and loss, with m, opt,
 * x32/x64 (X as float32/float64), loss(x) and step(x) (zero_grad, backward, step).
 */
const SCENARIOS = {
  adamThenTo: ['torch.optim.Adam(m.parameters(), lr=0.1)', 'm.to(torch.float64)\nstep(x64)\nstep(x64)'],
  fusedGradThenTo: ['torch.optim.Adam(m.parameters(), lr=0.1, fused=True)', 'loss(x32).backward()\nm.to(torch.float64)\nopt.step()\nstep(x64)'],
  sgdThenTo: ['torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)', 'm.to(torch.float64)\nstep(x64)\nstep(x64)'],
  stateThenTo: ['torch.optim.Adam(m.parameters(), lr=0.1)', 'step(x32)\nm.to(torch.float64)\nstep(x64)'],
  stateThenToReloaded: ['torch.optim.Adam(m.parameters(), lr=0.1)', 'step(x32)\nm.to(torch.float64)\nopt.load_state_dict(opt.state_dict())\nstep(x64)'],
} as const;
type Ref = { weight: number[][]; bias: number[]; dtype: string; error?: string };

/** Every scenario in one Python process (importing torch takes seconds). */
function pytorchRefs(): Record<keyof typeof SCENARIOS, Ref> {
  const code = `
import json, sys, torch
d = json.load(sys.stdin)
def run(optimizer, body):
    m = torch.nn.Linear(3, 2)
    with torch.no_grad():
        m.weight.copy_(torch.tensor(d['W'])); m.bias.copy_(torch.tensor(d['B']))
    env = {'torch': torch, 'm': m, 'x32': torch.tensor(d['X']), 'x64': torch.tensor(d['X'], dtype=torch.float64)}
    env['loss'] = lambda x: m(x).pow(2).mean()
    env['opt'] = opt = eval(optimizer, env)
    def step(x):
        opt.zero_grad(); env['loss'](x).backward(); opt.step()
    env['step'] = step
    out = {}
    try:
        exec(body, env)
    except Exception as e:
        out['error'] = str(e)
    out.update(weight=m.weight.tolist(), bias=m.bias.tolist(), dtype=str(m.weight.dtype).replace('torch.', ''))
    return out
print(json.dumps({k: run(*v) for k, v in d['scenarios'].items()}))
`;
  return JSON.parse(runPython(py!, ['-c', code], { input: JSON.stringify({ W, B, X, scenarios: SCENARIOS }) }));
}
let refs: Record<keyof typeof SCENARIOS, Ref>;
beforeAll(() => {
  if (py) refs = pytorchRefs();
});

function expectClose(actual: unknown, expected: unknown, tol: number): void {
  const a = (actual as number[][]).flat(2) as number[];
  const e = (expected as number[][]).flat(2) as number[];
  expect(a).toHaveLength(e.length);
  for (const [i, v] of a.entries()) expect(Math.abs(v - e[i])).toBeLessThanOrEqual(tol);
}

const snapshot = (m: Module) => m.namedParameters().map(([n, p]) => [n, p.dtype, p.requiresGrad, p.tolist()]);

describe('Module.to is all or nothing', () => {
  it('a non-float dtype is refused before anything changes, in PyTorch’s words', () => {
    const m = linear();
    const before = snapshot(m);
    expect(() => m.to('int64')).toThrow(new TypeError('nn.Module.to only accepts floating point or complex dtypes, but got desired dtype=torch.int64'));
    expect(() => m.to({ dtype: 'uint8' })).toThrow(/but got desired dtype=torch\.uint8/);
    expect(snapshot(m)).toEqual(before);
    // a module without parameters too, as PyTorch (the dtype is checked first)
    expect(() => new Sequential().to('bool')).toThrow(/desired dtype=torch\.bool/);
  });

  it('a conversion that fails on a later tensor leaves the earlier ones as they were', () => {
    const m = new Sequential(linear(), new BatchNorm1d(2));
    const bias = m.namedParameters().find(([n]) => n === '1.bias')![1];
    bias.dispose();
    expect(() => m.to('float64')).toThrow(/Sequential\.to\(float64\): 1\.bias: this tensor was disposed/);
    for (const [n, p] of m.namedParameters()) if (n !== '1.bias') expect([n, p.dtype, p.requiresGrad]).toEqual([n, 'float32', true]);
    expect(m.namedBuffers().map(([n, b]) => [n, b.dtype])).toEqual([
      ['1.running_mean', 'float32'],
      ['1.running_var', 'float32'],
      ['1.num_batches_tracked', 'int64'],
    ]);
  });

  it('a bad target names the value and the expected forms; nothing changes', () => {
    const m = linear();
    expect(() => m.to('tpu' as never)).toThrow(
      "Linear.to: expected a dtype (float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8, bool) or a device ('cpu', 'cuda', 'cuda:N'), got \"tpu\"",
    );
    expect(() => m.to(null as never)).toThrow(/Linear\.to: expected a dtype .* got null/);
    expect(m.weight.dtype).toBe('float32');
  });

  itPy('converts floating parameters, buffers and gradients in place, integer buffers keep their dtype (as PyTorch)', () => {
    const ref = JSON.parse(
      runPython(py!, [
        '-c',
        `import json, torch
m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
m(torch.ones(4, 3)).sum().backward()
m.to(torch.float64)
print(json.dumps({'params': [[n, str(p.dtype), p.requires_grad, str(p.grad.dtype)] for n, p in m.named_parameters()], 'buffers': [[n, str(b.dtype)] for n, b in m.named_buffers()]}))`,
      ]),
    ) as { params: [string, string, boolean, string][]; buffers: [string, string][] };
    const m = new Sequential(linear(), new BatchNorm1d(2));
    const before = m.parameters();
    m.forward(torch.ones([4, 3]))
      .sum()
      .backward();
    expect(m.to('float64')).toBe(m);
    const t = (d: string) => `torch.${d}`;
    expect(m.namedParameters().map(([n, p]) => [n, t(p.dtype), p.requiresGrad, t(p.grad!.dtype)])).toEqual(ref.params);
    expect(m.namedBuffers().map(([n, b]) => [n, t(b.dtype)])).toEqual(ref.buffers);
    expect(m.parameters()).toEqual(before);
    for (const [i, p] of m.parameters().entries()) expect(p).toBe(before[i]);
    expect((m.children()[0] as Linear).weight.tolist()).toEqual(torch.tensor(W).double().tolist());
    expect(m.forward(torch.ones([4, 3], { dtype: 'float64' })).dtype).toBe('float64');
  });
});

describe('scopes and modules', () => {
  it('a module created in a scope and returned from it keeps its parameters and buffers', () => {
    const m = torch.scope(() => new Linear(3, 2));
    expect(m.weight.isDisposed).toBe(false);
    expect(m.bias!.isDisposed).toBe(false);
    expect(m.forward(torch.ones([1, 3])).shape).toEqual([1, 2]);
    const { bn } = torch.scope(() => ({ bn: new BatchNorm1d(2) }));
    expect(bn.namedBuffers().every(([, b]) => !b.isDisposed)).toBe(true);
    expect(torch.scope(() => torch.scope(() => new Sequential(new Linear(2, 2)))).parameters()[0].isDisposed).toBe(false);
  });

  it('model.to() inside a scope keeps the converted parameters; the temporaries still go', () => {
    const m = linear();
    let tmp!: Tensor;
    const back = torch.scope(() => {
      tmp = m.forward(torch.ones([1, 3]));
      return m.to('float64');
    });
    expect(back).toBe(m);
    expect(tmp.isDisposed).toBe(true);
    expect(m.weight.isDisposed).toBe(false);
    expect(m.weight.dtype).toBe('float64');
    expect(m.forward(torch.ones([1, 3], { dtype: 'float64' })).shape).toEqual([1, 2]);
  });

  it('modules own their tensors: one made in a scope and not returned lives until dispose()', () => {
    let m!: Linear;
    torch.scope(() => {
      m = new Linear(3, 2);
    });
    expect(m.weight.isDisposed).toBe(false);
    m.dispose();
    expect(m.weight.isDisposed).toBe(true);
    expect(m.bias!.isDisposed).toBe(true);
  });
});

describe('optimizers across model.to()', () => {
  itPy('Adam created before model.to("float64") trains the converted weights, as PyTorch', () => {
    const ref = refs.adamThenTo;
    const m = linear();
    const opt = new Adam(m.parameters(), { lr: 0.1 });
    m.to('float64');
    trainStep(m, opt, 'float64');
    trainStep(m, opt, 'float64');
    expect(ref.error).toBeUndefined();
    expect(m.weight.dtype).toBe(ref.dtype);
    expectClose(m.weight.tolist(), ref.weight, 1e-12);
    expectClose(m.bias!.tolist(), ref.bias, 1e-12);
    expect(opt.params[0]).toBe(m.weight);
    expect(opt.stateDict().state[0].exp_avg).toMatchObject({ dtype: 'float64' });
  });

  itPy('fused Adam and SGD with momentum too; gradients made before the conversion are converted', () => {
    const fused = refs.fusedGradThenTo;
    expect(fused.error).toBeUndefined();
    const m = linear();
    const opt = new Adam(m.parameters(), { lr: 0.1, fused: true });
    m.forward(torch.tensor(X)).pow(2).mean().backward();
    m.to('float64');
    expect(m.weight.grad!.dtype).toBe('float64');
    opt.step();
    trainStep(m, opt, 'float64');
    expectClose(m.weight.tolist(), fused.weight, 1e-12);

    const sgd = refs.sgdThenTo;
    expect(sgd.error).toBeUndefined();
    const s = linear();
    const optS = new SGD(s.parameters(), { lr: 0.1, momentum: 0.9 });
    s.to('float64');
    trainStep(s, optS, 'float64');
    trainStep(s, optS, 'float64');
    expectClose(s.weight.tolist(), sgd.weight, 1e-12);
    expectClose(s.bias!.tolist(), sgd.bias, 1e-12);
  });

  itPy('Adam state made before model.to("float64"): the next step fails as in PyTorch, and loadStateDict casts the state', () => {
    const ref = refs.stateThenTo;
    expect(ref.error).toMatch(/expected dtype float for `end` but got dtype double/);
    const m = linear();
    const opt = new Adam(m.parameters(), { lr: 0.1 });
    trainStep(m, opt, 'float32');
    m.to('float64');
    const before = m.weight.tolist();
    // LibTorch's own op fails as PyTorch's does, or the native optimizer's check of its state does first
    expect(() => trainStep(m, opt, 'float64')).toThrow(/expected dtype float for `end` but got dtype double|exp_avg has dtype/);
    expect(m.weight.tolist()).toEqual(before);
    // PyTorch's fix: load the state again (Optimizer.load_state_dict casts it to the parameters)
    const fixed = refs.stateThenToReloaded;
    expect(fixed.error).toBeUndefined();
    const m2 = linear();
    const opt2 = new Adam(m2.parameters(), { lr: 0.1 });
    trainStep(m2, opt2, 'float32');
    m2.to('float64');
    opt2.loadStateDict(opt2.stateDict());
    trainStep(m2, opt2, 'float64');
    expectClose(m2.weight.tolist(), fixed.weight, 1e-7); // the first step ran in float32
  });
  (torch.cuda.isAvailable() ? it : it.skip)('state made before a device move: the next step is refused with the fix, then training goes on', () => {
    const m = linear();
    const opt = new Adam(m.parameters(), { lr: 0.1, fused: true });
    const stepOn = (device: 'cpu' | 'cuda') =>
      torch.scope(() => {
        opt.zeroGrad();
        m.forward(torch.tensor(X, { device })).pow(2).mean().backward();
        opt.step();
      });
    stepOn('cpu');
    m.to('cuda');
    expect(m.weight.device).toBe('cuda:0');
    const before = m.weight.tolist();
    expect(() => stepOn('cuda')).toThrow(/exp_avg|same device/); // PyTorch fails here too; the state is on the CPU
    expect(m.weight.tolist()).toEqual(before);
    opt.loadStateDict(opt.stateDict()); // moves the state to the parameters, as in PyTorch
    stepOn('cuda');
    expect(m.weight.tolist()).not.toEqual(before);
    m.to('cpu');
    expect(() => stepOn('cpu')).toThrow(/exp_avg|same device/); // the fused CPU kernel must not read device memory
  });
});

describe('strict loadStateDict', () => {
  it('a key whose value is not a Tensor is an error naming the key, in strict and non-strict mode', () => {
    for (const bad of [null, 0, undefined, 'abc', {}]) {
      const m = linear();
      const before = snapshot(m);
      const sd = { weight: bad as never, bias: torch.zeros([2]) };
      const got = bad === undefined ? 'undefined' : bad === null ? 'null' : typeof bad === 'string' ? '"abc"' : bad === 0 ? '0' : 'an object';
      const msg = `Error(s) in loading state_dict for Linear:\n\tWhile copying the parameter named "weight", expected a Tensor from checkpoint but received ${got}`;
      expect(() => m.loadStateDict(sd)).toThrow(msg);
      expect(() => m.loadStateDict(sd, { strict: false })).toThrow(msg);
      expect(snapshot(m)).toEqual(before); // bias was not copied either
    }
  });

  it('strict: a dtype mismatch, a disposed tensor or a state dict that is not an object is refused; non-strict converts the dtype', () => {
    const m = linear();
    const before = snapshot(m);
    // every problem at once, PyTorch's wording (shapes as JS arrays), and nothing copied
    expect(() => m.loadStateDict({ weight: torch.zeros([3, 3]), bias: torch.zeros([2], { dtype: 'float64' }) })).toThrow(
      'Error(s) in loading state_dict for Linear:\n\tsize mismatch for weight: copying a param with shape [3, 3] from checkpoint, the shape in current model is [2, 3].\n\tdtype mismatch for bias: copying a param with dtype float64 from checkpoint, the dtype in current model is float32.',
    );
    expect(() => m.loadStateDict({ weight: torch.zeros([2, 3], { dtype: 'int64' }), bias: torch.zeros([2]) })).toThrow(
      'dtype mismatch for weight: copying a param with dtype int64 from checkpoint, the dtype in current model is float32.',
    );
    const gone = torch.zeros([2]);
    gone.dispose();
    expect(() => m.loadStateDict({ weight: torch.zeros([2, 3]), bias: gone })).toThrow(
      'While copying the parameter named "bias", the Tensor from checkpoint was disposed',
    );
    expect(() => m.loadStateDict(null as never)).toThrow('Linear.loadStateDict: expected a state dict (an object of Tensors by name), got null');
    expect(snapshot(m)).toEqual(before);
    m.loadStateDict({ weight: torch.ones([2, 3], { dtype: 'float64' }) }, { strict: false });
    expect(m.weight.dtype).toBe('float32');
    expect(m.weight.tolist()).toEqual([
      [1, 1, 1],
      [1, 1, 1],
    ]);
  });
});
