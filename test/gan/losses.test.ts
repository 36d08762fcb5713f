/**
 * ganLosses against PyTorch implementations of the same formulas (StudioGAN's d_/g_ losses and
 * cal_grad_penalty, StyleGAN2's R1): each loss or penalty value, the gradient with respect to D's inputs
 * and every gradient of D's parameters after backward. Both sides build D after manual_seed(seed), then
 * draw the real and fake batches (and, for WGAN-GP, the interpolation eps) from the same generator in the
 * same order: our torch.rand and randn equal PyTorch's bit for bit after manualSeed.
 *
 * Tolerance: 2e-5 of the largest magnitude of each reference tensor (the same ATen kernels run on both
 * sides, one thread each; the bound only allows another CPU's summation order).
 */
import * as losses from '../../ts/gan/recipes/losses';
import * as nn from '../../ts/nn/index';
import { type Module } from '../../ts/nn/module';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';
import { type Nested, relDiff } from '../helpers/compare';

const py = findPython(['torch']);
const withTorch = py ? describe : describe.skip;
const REL_TOL = 2e-5;

// name -> [seed, D (Python), D (TypeScript), batch shape]
const MODELS: Record<string, [number, string, () => Module, number[]]> = {
  conv: [
    11,
    'S(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), L(64, 1))',
    () => new nn.Sequential(new nn.Conv2d(1, 4, 3, { stride: 2, padding: 1 }), new nn.LeakyReLU(0.2), new nn.Flatten(), new nn.Linear(64, 1)),
    [4, 1, 8, 8],
  ],
  mlp: [
    12,
    'S(L(5, 8), nn.Tanh(), L(8, 8), nn.LeakyReLU(0.2), L(8, 1))',
    () => new nn.Sequential(new nn.Linear(5, 8), new nn.Tanh(), new nn.Linear(8, 8), new nn.LeakyReLU(0.2), new nn.Linear(8, 1)),
    [6, 5],
  ],
};

// each family's D and G loss
const FAMILIES = {
  nonSaturating: [losses.nonSaturatingD, losses.nonSaturatingG],
  hinge: [losses.hingeD, losses.hingeG],
  wasserstein: [losses.wassersteinD, losses.wassersteinG],
  leastSquares: [losses.leastSquaresD, losses.leastSquaresG],
} as const;

const REFERENCE = `
import json, torch
import torch.nn.functional as F
from torch import autograd
torch.set_num_threads(1)
nn = torch.nn
S, L = nn.Sequential, nn.Linear

# StudioGAN's losses (src/utils/losses.py), the non-saturating pair as StyleGAN2 writes it.
D_LOSS = {
    'nonSaturating': lambda r, f: F.softplus(-r).mean() + F.softplus(f).mean(),
    'hinge': lambda r, f: torch.mean(F.relu(1. - r)) + torch.mean(F.relu(1. + f)),
    'wasserstein': lambda r, f: f.mean() - r.mean(),
    'leastSquares': lambda r, f: 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f ** 2).mean(),
}
G_LOSS = {
    'nonSaturating': lambda f: F.softplus(-f).mean(),
    'hinge': lambda f: -torch.mean(f),
    'wasserstein': lambda f: -torch.mean(f),
    'leastSquares': lambda f: (0.5 * (f - 1) ** 2).mean(),
}

def cal_grad_penalty(real_images, fake_images, discriminator):  # StudioGAN's, labels left out
    batch_size = real_images.shape[0]
    alpha = torch.rand(batch_size, 1)
    alpha = alpha.expand(batch_size, real_images.nelement() // batch_size).contiguous().view(real_images.shape)
    interpolates = alpha * real_images + ((1 - alpha) * fake_images)
    interpolates = autograd.Variable(interpolates, requires_grad=True)
    out = discriminator(interpolates)
    grads = autograd.grad(outputs=out, inputs=interpolates, grad_outputs=torch.ones(out.size()), create_graph=True, retain_graph=True, only_inputs=True)[0]
    grads = grads.view(grads.size(0), -1)
    return ((grads.norm(2, dim=1) - 1) ** 2).mean()

def r1(real_img, D):  # StyleGAN2-ada's loss_Dr1 before the gamma / 2, averaged over the batch
    real_img_tmp = real_img.detach().requires_grad_(True)
    real_logits = D(real_img_tmp)
    r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True)[0]
    return r1_grads.square().sum(list(range(1, real_img.dim()))).mean(), real_img_tmp

def grads_of(m):
    return {n: None if p.grad is None else p.grad.tolist() for n, p in m.named_parameters()}

def setup(seed, model, shape):
    torch.manual_seed(seed)
    D = eval(model)
    real = torch.randn(*shape).requires_grad_(True)
    fake = torch.randn(*shape).requires_grad_(True)
    return D, real, fake

out = {}
for name, (seed, model, shape) in json.loads(input()).items():
    for fam in D_LOSS:
        D, real, fake = setup(seed, model, shape)
        d = D_LOSS[fam](D(real), D(fake))
        d.backward()
        rec = {'d': d.item(), 'dReal': real.grad.tolist(), 'dFake': fake.grad.tolist(), 'dParams': grads_of(D)}
        D.zero_grad(set_to_none=True)
        fake.grad = None
        g = G_LOSS[fam](D(fake))
        g.backward()
        rec.update({'g': g.item(), 'gFake': fake.grad.tolist(), 'gParams': grads_of(D)})
        out[name + '.' + fam] = rec
    D, real, fake = setup(seed, model, shape)
    p = cal_grad_penalty(real, fake, D)
    p.backward()
    out[name + '.wganGp'] = {'penalty': p.item(), 'params': grads_of(D), 'realGrad': real.grad is not None, 'fakeGrad': fake.grad is not None,
                             'next': torch.rand(3).tolist()}
    D, real, fake = setup(seed, model, shape)
    p, x = r1(real, D)
    p.backward()
    out[name + '.r1'] = {'penalty': p.item(), 'params': grads_of(D), 'input': x.grad.tolist()}
print(json.dumps(out))
`;

type Grads = Record<string, Nested | null>;

const close = (what: string, t: Tensor, ref: Nested) => expect({ what, ok: relDiff(t, ref) < REL_TOL }).toEqual({ what, ok: true });
const closeNumber = (what: string, v: number, ref: number) =>
  expect({ what, ok: Math.abs(v - ref) <= REL_TOL * Math.max(Math.abs(ref), 1e-6) }).toEqual({ what, ok: true });

function sameParamGrads(what: string, m: Module, ref: Grads): void {
  const params = m.namedParameters();
  expect(params.map(([n]) => n)).toEqual(Object.keys(ref));
  for (const [n, p] of params) {
    if (ref[n] === null) expect({ n, grad: p.grad }).toEqual({ n, grad: null });
    else close(`${what} ${n}`, p.grad!, ref[n]!);
  }
}

function setup(name: string): { D: Module; real: Tensor; fake: Tensor } {
  const [seed, , make, shape] = MODELS[name];
  torch.manualSeed(seed);
  const D = make();
  const real = torch.randn(shape).requiresGrad_();
  const fake = torch.randn(shape).requiresGrad_();
  return { D, real, fake };
}

withTorch('ganLosses equal PyTorch implementations of the same formulas (values, input and parameter gradients)', () => {
  let ref: Record<string, Record<string, unknown>>;
  beforeAll(() => {
    torch.setNumThreads(1);
    const input = Object.fromEntries(Object.entries(MODELS).map(([k, [seed, model, , shape]]) => [k, [seed, model, shape]]));
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE], { input: `${JSON.stringify(input)}\n` }));
  });

  const cases = Object.keys(MODELS).flatMap((m) => (Object.keys(FAMILIES) as (keyof typeof FAMILIES)[]).map((f) => [m, f] as const));
  it.each(cases)('%s D: %s D and G losses', (model, fam) => {
    const r = ref[`${model}.${fam}`] as { d: number; dReal: Nested; dFake: Nested; dParams: Grads; g: number; gFake: Nested; gParams: Grads };
    torch.scope(() => {
      const { D, real, fake } = setup(model);
      const [dLoss, gLoss] = FAMILIES[fam];
      const d = dLoss(D.call(real), D.call(fake));
      d.backward();
      closeNumber('D loss', d.item(), r.d);
      close('D loss d/d real', real.grad!, r.dReal);
      close('D loss d/d fake', fake.grad!, r.dFake);
      sameParamGrads('D loss', D, r.dParams);
      D.zeroGrad();
      fake.grad = null;
      const g = gLoss(D.call(fake));
      g.backward();
      closeNumber('G loss', g.item(), r.g);
      close('G loss d/d fake', fake.grad!, r.gFake);
      sameParamGrads('G loss', D, r.gParams);
    });
  });

  it.each(Object.keys(MODELS))('%s D: WGAN-GP penalty (interpolation eps drawn as PyTorch draws it)', (model) => {
    const r = ref[`${model}.wganGp`] as { penalty: number; params: Grads; realGrad: boolean; fakeGrad: boolean; next: number[] };
    torch.scope(() => {
      const { D, real, fake } = setup(model);
      const p = losses.wganGpPenalty(D, real, fake);
      p.backward();
      closeNumber('penalty', p.item(), r.penalty);
      sameParamGrads('penalty', D, r.params);
      // the interpolates are a leaf: nothing reaches real or fake (G), on either side
      expect([real.grad !== null, fake.grad !== null]).toEqual([r.realGrad, r.fakeGrad]);
      expect([r.realGrad, r.fakeGrad]).toEqual([false, false]);
      // one draw of N values, as PyTorch's: the generators are at the same place afterwards
      expect(torch.rand([3]).tolist()).toEqual(r.next);
      // a function of the batch (a conditional D closing over its labels) is a D too
      torch.manualSeed(0);
      const viaModule = losses.wganGpPenalty(D, real, fake).item();
      torch.manualSeed(0);
      expect(losses.wganGpPenalty((x) => D.call(x), real, fake).item()).toBe(viaModule);
    });
  });

  it.each(Object.keys(MODELS))('%s D: R1 penalty on reals', (model) => {
    const r = ref[`${model}.r1`] as { penalty: number; params: Grads; input: Nested };
    torch.scope(() => {
      const { D, real } = setup(model);
      const x = real.detach().requiresGrad_();
      const p = losses.r1Penalty(D.call(x), x);
      p.backward();
      closeNumber('penalty', p.item(), r.penalty);
      sameParamGrads('penalty', D, r.params);
      close('penalty d/d real', x.grad!, r.input);
    });
  });
});

describe('ganLosses bad input', () => {
  it('penalties on tensors that do not require grad, or a D that cannot be differentiated, name the problem', () => {
    torch.scope(() => {
      torch.manualSeed(1);
      const D = new nn.Sequential(new nn.Linear(3, 1));
      const real = torch.randn([4, 3]);
      expect(() => losses.r1Penalty(D.call(real), real)).toThrow(
        'r1Penalty: realInput does not require grad: call D on real.detach().requiresGrad_() and pass that tensor with D',
      );
      const x = real.detach().requiresGrad_();
      expect(() =>
        losses.r1Penalty(
          torch.noGrad(() => D.call(x)),
          x,
        ),
      ).toThrow('r1Penalty: realOutput does not require grad (was D called under noGrad?)');
      const other = real.detach().requiresGrad_();
      expect(() => losses.r1Penalty(D.call(x), other)).toThrow('r1Penalty: realOutput does not depend on realInput');
      expect(() => losses.wganGpPenalty((t) => torch.noGrad(() => D.call(t)), real, real)).toThrow(
        "wganGpPenalty: D's output does not require grad, so it has no gradient with respect to its input (was D called under noGrad?)",
      );
      expect(() => losses.wganGpPenalty(D, real, torch.randn([5, 3]))).toThrow('wganGpPenalty: real and fake must have the same shape, got [4, 3] and [5, 3]');
      expect(() => losses.wganGpPenalty(D, torch.randn([4]), torch.randn([4]))).toThrow(
        'wganGpPenalty: real must be a batch [N, ...] of at least 2 dims, got shape [4]',
      );
    });
  });

  it('wrong types are TypeErrors naming the argument and the value', () => {
    torch.scope(() => {
      const t = torch.randn([2, 1]);
      expect(() => losses.hingeD(t, [1, 2] as never)).toThrow(new TypeError('hingeD: fake: expected a Tensor, got [1,2]'));
      expect(() => losses.nonSaturatingG(undefined as never)).toThrow(new TypeError('nonSaturatingG: fake: expected a Tensor, got undefined'));
      expect(() => losses.wganGpPenalty('D' as never, t, t)).toThrow(
        new TypeError('wganGpPenalty: d: expected a Module or a function (x: Tensor) => Tensor, got "D"'),
      );
      expect(() => losses.wganGpPenalty(() => 3 as never, t, t)).toThrow(new TypeError('wganGpPenalty: d(x): expected a Tensor, got 3'));
      expect(() => losses.r1Penalty(t, 'x' as never)).toThrow(new TypeError('r1Penalty: realInput: expected a Tensor, got "x"'));
    });
  });
});
