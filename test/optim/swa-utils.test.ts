/**
 * optim.swaUtils against torch.optim.swa_utils: the same small model (Linear, BatchNorm1d, LeakyReLU,
 * Linear, built after the same manual_seed) trains 5 Adam steps on both sides, its AveragedModel updated
 * after each step; then the averaged model's state dict (keys in order, values, n_averaged) and its
 * output in eval mode are compared, for each averaging function and with and without useBuffers.
 *
 * Tolerance: 1e-6 of each reference tensor's largest magnitude (float32: the same ATen kernels and Adam's
 * single-tensor update op for op, one thread each; only another CPU's summation order may differ; on
 * this machine they are equal bit for bit); integer buffers (n_averaged, num_batches_tracked) exactly.
 */
import * as scopeModule from '../../ts/tensor/scope';
import { optim } from '../../ts/index';
import * as F from '../../ts/nn/functional';
import * as nn from '../../ts/nn/index';
import { type Module } from '../../ts/nn/module';
import { AveragedModel, getEmaAvgFn, getEmaMultiAvgFn, getSwaAvgFn, getSwaMultiAvgFn } from '../../ts/optim/swa-utils';
import { Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';
import { type Nested, relDiff } from '../helpers/compare';

const py = findPython(['torch']);
const withTorch = py ? describe : describe.skip;
const REL_TOL = 1e-6;

// name -> [seed, averaging (Python expression), useBuffers]
const CASES: Record<string, [number, string, boolean]> = {
  'EMA (getEmaMultiAvgFn 0.9), useBuffers': [1, 'multi_avg_fn=get_ema_multi_avg_fn(0.9)', true],
  'EMA (getEmaMultiAvgFn 0.9), buffers copied': [2, 'multi_avg_fn=get_ema_multi_avg_fn(0.9)', false],
  'EMA (getEmaAvgFn 0.8), useBuffers': [3, 'avg_fn=get_ema_avg_fn(0.8)', true],
  'SWA (default), useBuffers': [4, '', true],
  'SWA (getSwaMultiAvgFn)': [5, 'multi_avg_fn=get_swa_multi_avg_fn()', false],
  'SWA (getSwaAvgFn), buffers copied': [6, 'avg_fn=get_swa_avg_fn()', false],
};
const OURS: Record<string, () => { avgFn?: optim.swaUtils.AvgFn; multiAvgFn?: optim.swaUtils.MultiAvgFn }> = {
  'EMA (getEmaMultiAvgFn 0.9), useBuffers': () => ({ multiAvgFn: getEmaMultiAvgFn(0.9) }),
  'EMA (getEmaMultiAvgFn 0.9), buffers copied': () => ({ multiAvgFn: getEmaMultiAvgFn(0.9) }),
  'EMA (getEmaAvgFn 0.8), useBuffers': () => ({ avgFn: getEmaAvgFn(0.8) }),
  'SWA (default), useBuffers': () => ({}),
  'SWA (getSwaMultiAvgFn)': () => ({ multiAvgFn: getSwaMultiAvgFn() }),
  'SWA (getSwaAvgFn), buffers copied': () => ({ avgFn: getSwaAvgFn() }),
};

const REFERENCE = `
import json, torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn, get_ema_avg_fn, get_swa_multi_avg_fn, get_swa_avg_fn
torch.set_num_threads(1)
out = {}
for name, (seed, avg, use_buffers) in json.loads(input()).items():
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.LeakyReLU(0.2), nn.Linear(8, 2))
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    averaged = eval(f'AveragedModel(model, {avg}{", " if avg else ""}use_buffers={use_buffers})')
    for _ in range(5):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        averaged.update_parameters(model)
    sd = averaged.state_dict()
    averaged.eval()
    with torch.no_grad():
        output = averaged(x)
    out[name] = {'keys': list(sd.keys()), 'values': {k: v.tolist() for k, v in sd.items()}, 'output': output.tolist()}
print(json.dumps(out))
`;

function makeModel(): Module {
  return new nn.Sequential(new nn.Linear(4, 8), new nn.BatchNorm1d(8), new nn.LeakyReLU(0.2), new nn.Linear(8, 2));
}

function same(what: string, t: Tensor, ref: Nested): void {
  if (t.dtype === 'int64') expect({ what, value: t.tolist() }).toEqual({ what, value: ref });
  else expect({ what, ok: relDiff(t, ref) <= REL_TOL }).toEqual({ what, ok: true });
}

withTorch('optim.swaUtils.AveragedModel equals torch.optim.swa_utils after 5 Adam steps (state dict and output)', () => {
  let ref: Record<string, { keys: string[]; values: Record<string, Nested>; output: Nested }>;
  beforeAll(() => {
    torch.setNumThreads(1);
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE], { input: `${JSON.stringify(CASES)}\n` }));
  });

  it.each(Object.keys(CASES))('%s', (name) => {
    const [seed, , useBuffers] = CASES[name];
    torch.scope(() => {
      torch.manualSeed(seed);
      const model = makeModel();
      const x = torch.randn([16, 4]);
      const y = torch.randn([16, 2]);
      const opt = new optim.Adam(model.parameters(), { lr: 0.05 });
      const averaged = new optim.swaUtils.AveragedModel(model, { ...OURS[name](), useBuffers });
      for (let i = 0; i < 5; i++) {
        opt.zeroGrad();
        torch.scope(() => F.mseLoss(model.call(x), y).backward());
        opt.step();
        averaged.updateParameters(model);
      }
      const sd = averaged.stateDict();
      expect(Object.keys(sd)).toEqual(ref[name].keys);
      for (const [k, v] of Object.entries(sd)) same(`${name}: ${k}`, v, ref[name].values[k]);
      averaged.eval();
      same(
        `${name}: output`,
        torch.noGrad(() => averaged.call(x)),
        ref[name].output,
      );
      expect(averaged.nAveraged.item()).toBe(5);
      averaged.dispose();
      model.dispose();
    });
  });
});

describe('AveragedModel', () => {
  it('is a copy with tensors of its own; the first update copies, later ones average; without useBuffers the buffers are copied', () => {
    torch.scope(() => {
      torch.manualSeed(0);
      const model = makeModel();
      const ema = new AveragedModel(model, { multiAvgFn: getEmaMultiAvgFn(0.5) });
      const mine = ema.module.namedParameters();
      const theirs = model.namedParameters();
      expect(mine.map(([n]) => n)).toEqual(theirs.map(([n]) => n));
      mine.forEach(([, p], i) => {
        expect(p).not.toBe(theirs[i][1]);
        expect(p.requiresGrad).toBe(true);
        expect(p.grad).toBeNull();
        expect(p.tolist()).toEqual(theirs[i][1].tolist());
      });
      expect(ema.module).toBeInstanceOf(nn.Sequential);
      expect(ema.module.children().map((c) => c.constructor.name)).toEqual(['Linear', 'BatchNorm1d', 'LeakyReLU', 'Linear']);
      expect(ema.nAveraged.dtype).toBe('int64');
      expect(ema.nAveraged.item()).toBe(0);
      const w = (model as nn.Sequential).children()[0] as nn.Linear;
      const wCopy = (ema.module as nn.Sequential).children()[0] as nn.Linear;
      // changing the model leaves the copy alone until an update
      torch.noGrad(() => w.weight.fill_(2));
      expect(wCopy.weight.eq(2).sum().item()).toBe(0);
      ema.updateParameters(model); // first: a copy
      expect(wCopy.weight.eq(2).sum().item()).toBe(32);
      torch.noGrad(() => w.weight.fill_(4));
      ema.updateParameters(model); // 0.5 * 2 + 0.5 * 4
      expect(wCopy.weight.eq(3).sum().item()).toBe(32);
      // buffers copied without useBuffers
      const bn = (model as nn.Sequential).children()[1];
      const bnCopy = (ema.module as nn.Sequential).children()[1];
      torch.noGrad(() => bn._buffers.get('running_mean')!.fill_(6));
      ema.updateParameters(model);
      expect(bnCopy._buffers.get('running_mean')!.tolist()).toEqual(Array(8).fill(6));
      expect(ema.nAveraged.item()).toBe(3);
    });
  });

  it('frees every temporary of an update, and dispose() frees its tensors; the model is left as it was', () => {
    torch.manualSeed(1);
    const model = makeModel();
    const ema = new AveragedModel(model, { multiAvgFn: getEmaMultiAvgFn(0.9), useBuffers: true });
    const created: Tensor[] = [];
    const original = scopeModule.track;
    const track = jest.spyOn(scopeModule, 'track').mockImplementation((t) => {
      if (t instanceof Tensor) created.push(t);
      original(t);
    });
    try {
      for (let i = 0; i < 3; i++) ema.updateParameters(model);
    } finally {
      track.mockRestore();
    }
    expect(created.length).toBeGreaterThan(0);
    expect(created.filter((t) => !t.isDisposed)).toEqual([]);
    const owned = [...ema.namedParameters(), ...ema.namedBuffers()].map(([, t]) => t);
    ema.dispose();
    expect(owned.every((t) => t.isDisposed)).toBe(true);
    expect(model.parameters().some((t) => t.isDisposed)).toBe(false);
    model.dispose();
  });

  it('made inside torch.scope, keeps its tensors; shared tensors stay shared in the copy', () => {
    torch.manualSeed(2);
    const lin = new nn.Linear(3, 3);
    const model = new nn.Sequential(lin, new nn.ReLU(), lin); // the same layer twice
    const ema = torch.scope(() => new AveragedModel(model, { multiAvgFn: getEmaMultiAvgFn(0.5) }));
    expect(ema.parameters().every((t) => !t.isDisposed)).toBe(true);
    const [a, , b] = (ema.module as nn.Sequential).children();
    expect(a).toBe(b);
    torch.scope(() => {
      ema.updateParameters(model);
      const w0 = torch.noGrad(() => lin.weight.clone());
      torch.noGrad(() => lin.weight.fill_(1));
      ema.updateParameters(model); // a shared tensor is averaged once (0.5 w0 + 0.5), as PyTorch's parameters() lists it once
      // twice would give 0.25 w0 + 0.75, at least 0.125 away (|w0| <= 1 / sqrt(3))
      expect((a as nn.Linear).weight.sub(w0.mul(0.5).add(0.5)).abs().max().item()).toBeLessThan(1e-6);
    });
    ema.dispose();
    model.dispose();
  });

  it('copies a Module subclass of the user’s: its class, fields and submodules', () => {
    class Scaled extends nn.Module {
      readonly opts = { scale: [2] };
      readonly inner = new nn.Linear(2, 2);
      constructor() {
        super();
        this.registerModule('inner', this.inner);
        this.registerBuffer('offset', torch.ones([2]));
      }
      forward(x: Tensor): Tensor {
        return this.inner.call(x).mul(this.opts.scale[0]).add(this._buffers.get('offset')!);
      }
    }
    torch.scope(() => {
      torch.manualSeed(4);
      const model = new Scaled();
      const ema = new AveragedModel(model);
      const copy = ema.module;
      expect(copy).toBeInstanceOf(Scaled);
      expect(copy.opts).toEqual({ scale: [2] });
      expect(copy.opts).not.toBe(model.opts);
      expect(copy.inner).toBe(copy.children()[0]);
      expect(copy.inner).not.toBe(model.inner);
      const x = torch.randn([3, 2]);
      expect(ema.call(x).tolist()).toEqual(model.call(x).tolist());
      expect(Object.keys(ema.stateDict())).toEqual(['n_averaged', 'module.offset', 'module.inner.weight', 'module.inner.bias']);
      ema.dispose();
    });
  });

  it('state dict keys are PyTorch’s and load back', () => {
    torch.scope(() => {
      torch.manualSeed(3);
      const model = new nn.Sequential(new nn.Linear(2, 3), new nn.BatchNorm1d(3));
      const ema = new optim.swaUtils.AveragedModel(model, { device: 'cpu' });
      expect(ema.nAveraged.device).toBe('cpu');
      expect(Object.keys(ema.stateDict())).toEqual([
        'n_averaged',
        'module.0.weight',
        'module.0.bias',
        'module.1.weight',
        'module.1.bias',
        'module.1.running_mean',
        'module.1.running_var',
        'module.1.num_batches_tracked',
      ]);
      ema.updateParameters(model);
      const other = new AveragedModel(new nn.Sequential(new nn.Linear(2, 3), new nn.BatchNorm1d(3)));
      other.loadStateDict(ema.stateDict());
      expect(other.nAveraged.item()).toBe(1);
      expect(other.module.parameters().map((p) => p.tolist())).toEqual(model.parameters().map((p) => p.tolist()));
    });
  });
});

describe('swaUtils bad input', () => {
  it('EMA decay outside (0, 1) is a RangeError naming it', () => {
    for (const d of [0, 1, -0.5, 1.5, Number.NaN]) {
      expect(() => getEmaMultiAvgFn(d)).toThrow(
        new RangeError(`getEmaMultiAvgFn: decay: expected a number between 0 and 1, exclusive (such as 0.999), got ${d}`),
      );
    }
    expect(() => getEmaAvgFn(2)).toThrow(new RangeError('getEmaAvgFn: decay: expected a number between 0 and 1, exclusive (such as 0.999), got 2'));
    expect(() => getEmaMultiAvgFn('0.9' as never)).toThrow(
      new TypeError('getEmaMultiAvgFn: decay: expected a number between 0 and 1, exclusive (such as 0.999), got "0.9"'),
    );
  });

  it('a non-Module, unknown options and wrong option types are errors naming the value', () => {
    torch.scope(() => {
      const model = new nn.Linear(2, 2);
      expect(() => new AveragedModel({ parameters: () => [] } as never)).toThrow(new TypeError('AveragedModel: model: expected an nn.Module, got an object'));
      expect(() => new AveragedModel(torch.zeros([2]) as never)).toThrow(new TypeError('AveragedModel: model: expected an nn.Module, got a Tensor'));
      expect(() => new AveragedModel(model, { usebuffers: true } as never)).toThrow(
        new TypeError('AveragedModel: unknown option "usebuffers": did you mean useBuffers? (options: device, avgFn, multiAvgFn, useBuffers)'),
      );
      expect(() => new AveragedModel(model, { useBuffers: 1 } as never)).toThrow(new TypeError('AveragedModel: useBuffers: expected a boolean, got 1'));
      expect(() => new AveragedModel(model, { device: 'gpu' } as never)).toThrow(
        new TypeError("AveragedModel: device: expected 'cpu', 'cuda' or 'cuda:N', got \"gpu\""),
      );
      expect(() => new AveragedModel(model, { avgFn: 0.9 } as never)).toThrow(
        new TypeError('AveragedModel: avgFn: expected a function (averaged, current, numAveraged) => Tensor, got 0.9'),
      );
      expect(() => new AveragedModel(model, { avgFn: getEmaAvgFn(), multiAvgFn: getEmaMultiAvgFn() })).toThrow(
        new TypeError('AveragedModel: give avgFn or multiAvgFn, not both'),
      );
      const ema = new AveragedModel(model);
      expect(() => ema.updateParameters('model' as never)).toThrow(new TypeError('AveragedModel.updateParameters: model: expected an nn.Module, got "model"'));
      expect(() => ema.updateParameters(new nn.Linear(2, 3))).toThrow("AveragedModel.updateParameters: weight has shape [3, 2], the averaged copy's [2, 2]");
      expect(() => ema.updateParameters(new nn.Sequential(new nn.Linear(2, 2), new nn.Linear(2, 2)))).toThrow(
        'AveragedModel.updateParameters: the model has 4 parameters and 0 buffers, the averaged copy 2 and 0: pass the model it was made from',
      );
      const gone = new nn.Linear(2, 2);
      gone.dispose();
      expect(() => new AveragedModel(gone)).toThrow("AveragedModel: the model's tensor weight was disposed and cannot be copied");
      expect(ema.nAveraged.item()).toBe(0);
      ema.dispose();
    });
  });
});
