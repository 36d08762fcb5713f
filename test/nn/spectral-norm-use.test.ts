/**
 * spectralNorm in use: bad input (each a clear error naming the value), what the fused step is given of a
 * spectral-normed layer, a GAN step on the facade with a spectral-normed D, and Module.to. Its values
 * against PyTorch's are in spectral-norm.test.ts; in the fused step, test/gan/spectral-norm-step.test.ts.
 */
import { buildModels, makeOptimizer } from '../../ts/gan/build';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { presets } from '../../ts/gan/presets';
import * as nn from '../../ts/nn/index';
import { type SpectralNorm } from '../../ts/nn/utils/parametrizations';
import { callOp, type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';

const { spectralNorm } = nn.utils.parametrizations;
const { isParametrized, removeParametrizations } = nn.utils.parametrize;

describe('spectralNorm: bad input', () => {
  it.each<[string, () => unknown, ErrorConstructor, string | RegExp]>([
    [
      'a module without the tensor',
      () => spectralNorm(new nn.ReLU()),
      TypeError,
      'spectralNorm: module ReLU has no parameter or buffer named "weight" (it has none)',
    ],
    [
      'a misspelt name',
      () => spectralNorm(new nn.Linear(2, 3), { name: 'bias2' }),
      TypeError,
      `spectralNorm: module Linear has no parameter or buffer named "bias2" (did you mean 'bias'?)`,
    ],
    [
      'a bias that is None',
      () => spectralNorm(new nn.Linear(2, 3, { bias: false }), { name: 'bias' }),
      TypeError,
      'spectralNorm: module Linear has no parameter or buffer named "bias" (it has weight)',
    ],
    [
      'a name that is no string',
      () => spectralNorm(new nn.Linear(2, 3), { name: 0 as never }),
      TypeError,
      'spectralNorm: name: expected the name of a parameter or buffer, got 0',
    ],
    [
      'an unknown option',
      () => spectralNorm(new nn.Linear(2, 3), { nPowerIteration: 2 } as never),
      TypeError,
      /unknown option "nPowerIteration": did you mean nPowerIterations\?/,
    ],
    [
      'options that are no object',
      () => spectralNorm(new nn.Linear(2, 3), 'weight' as never),
      TypeError,
      /spectralNorm: expected an object \{ name\?, .*, got "weight"/,
    ],
    [
      'nPowerIterations 0',
      () => spectralNorm(new nn.Linear(2, 3), { nPowerIterations: 0 }),
      RangeError,
      'spectralNorm: nPowerIterations: expected an integer >= 1, got 0',
    ],
    [
      'nPowerIterations 1.5',
      () => spectralNorm(new nn.Linear(2, 3), { nPowerIterations: 1.5 }),
      RangeError,
      'nPowerIterations: expected an integer >= 1, got 1.5',
    ],
    ['eps 0', () => spectralNorm(new nn.Linear(2, 3), { eps: 0 }), RangeError, 'spectralNorm: eps: expected a number > 0, got 0'],
    ['eps < 0', () => spectralNorm(new nn.Linear(2, 3), { eps: -1e-12 }), RangeError, 'spectralNorm: eps: expected a number > 0, got -1e-12'],
    ['dim out of range', () => spectralNorm(new nn.Conv2d(1, 2, 3), { dim: 4 }), RangeError, 'spectralNorm: dim: expected an integer from -4 to 3, got 4'],
    [
      'a scalar',
      () => {
        const m = new nn.Linear(2, 3);
        m.registerBuffer('scale', torch.tensor([2]).squeeze());
        return spectralNorm(m, { name: 'scale' });
      },
      RangeError,
      `spectralNorm: Linear's "scale" is a scalar; expected a tensor of 1 or more dimensions`,
    ],
    ['no module', () => spectralNorm({ weight: torch.ones([2, 2]) } as never), TypeError, 'spectralNorm: expected an nn.Module, got an object'],
  ])('%s', (_, f, cls, message) => {
    expect(f).toThrow(cls);
    expect(f).toThrow(message);
  });

  it('refuses before it changes anything: no draw from the generator, the module as it was', () => {
    const m = new nn.Linear(3, 2);
    torch.manualSeed(5);
    const before = torch.rand([4]).toFloat32Array();
    torch.manualSeed(5);
    expect(() => spectralNorm(m, { eps: 0 })).toThrow(RangeError);
    expect(torch.rand([4]).toFloat32Array()).toEqual(before);
    expect(isParametrized(m)).toBe(false);
    expect(Object.keys(m.stateDict())).toEqual(['weight', 'bias']);
  });

  it('removeParametrizations and registerParametrization name what is wrong', () => {
    const m = spectralNorm(new nn.Linear(3, 2));
    expect(() => removeParametrizations(m, 'bias')).toThrow(
      `removeParametrizations: module ParametrizedLinear has no parametrization on "bias" (it has: weight)`,
    );
    expect(() => removeParametrizations(new nn.Linear(3, 2), 'weight')).toThrow(/has no parametrization on "weight"$/);
    expect(() => nn.utils.parametrize.registerParametrization(m, 'bias', new nn.ReLU(), { unSafe: true } as never)).toThrow(
      /registerParametrization: unknown option "unSafe": did you mean unsafe\?/,
    );
    expect(() => nn.utils.parametrize.registerParametrization(m, 'bias', new nn.Linear(2, 3))).toThrow(
      'the parametrization may not change the shape of the tensor: [2] became [3]',
    );
    expect(Object.keys(m.stateDict())).toEqual(['bias', 'parametrizations.weight.original', 'parametrizations.weight.0._u', 'parametrizations.weight.0._v']);
  });
});

describe('spectralNorm and the fused step', () => {
  it("toNativeLayers gives a spectral-normed layer's original weight (what the optimizer trains), u, v and the numbers", () => {
    const sn = spectralNorm(new nn.ConvTranspose2d(3, 2, 4), { nPowerIterations: 2, eps: 1e-6 });
    const D = new nn.Sequential(new nn.Linear(784, 8), new nn.LeakyReLU(0.2), sn);
    const layers = nn.toNativeLayers(D);
    expect(layers[0]).toMatchObject({ kind: 'Linear', spectralNorm: null });
    const norm = sn.parametrizations.weight.at(0) as SpectralNorm;
    expect(layers[2]).toMatchObject({
      kind: 'ConvTranspose2d',
      name: '2',
      weight: sn.parametrizations.weight.original._native,
      spectralNorm: { u: norm._u!._native, v: norm._v!._native, nPowerIterations: 2, eps: 1e-6, dim: 1 },
    });
    expect(D.parameters()).toContain(sn.parametrizations.weight.original);
  });
});

describe('spectralNorm in a facade GAN step', () => {
  /** The largest singular value of a matrix. */
  const sigmaMax = (w: Tensor) => (callOp('aten::linalg_svdvals', '', [w], { driver: null }) as Tensor).max().item();

  it("imperativeStep trains a D whose Linear layers are spectral-normed: v moves, each weight's largest singular value is 1", () => {
    torch.scope(() => {
      torch.manualSeed(3);
      const p = presets.vanilla;
      const { generator: G, discriminator: D } = buildModels(p);
      const linears = [...D.namedModules()].flatMap(([, m]) => (m instanceof nn.Linear ? [spectralNorm(m)] : []));
      expect(linears).toHaveLength(4);
      const vs = () => linears.map((m) => (m.parametrizations.weight.at(0) as SpectralNorm)._v!.toFloat32Array());
      const before = vs();
      const optG = makeOptimizer(p.optimizer, G.parameters());
      const optD = makeOptimizer(p.optimizer, D.parameters());
      for (let i = 0; i < 2; i++) {
        const r = imperativeStep(G, D, optG, optD, p.step, torch.rand([8, 784]).mul(2).sub(1));
        expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
      }
      // three forwards of D per step (real, fake for D, fake for G), one power iteration each (the last layer's u has one element: always 1)
      for (const [i, v] of vs().entries()) expect(v).not.toEqual(before[i]);
      D.eval();
      // sigma is a power-iteration estimate (16 iterations at registration, 6 since), which errs low: the
      // normalized weights' largest singular values are 1.000 to 1.045 here (the 1024 x 784 layer the farthest)
      const sigmas = linears.map((m) => torch.noGrad(() => sigmaMax(m.weight)));
      for (const s of sigmas) expect(s > 1 - 1e-6 && s < 1.1).toBe(true);
    });
  });

  it('Module.to converts original, u and v in place', () => {
    torch.scope(() => {
      torch.manualSeed(4);
      const m = spectralNorm(new nn.Conv2d(2, 3, 3)).eval();
      const tensors = [...m.namedParameters(), ...m.namedBuffers()].map(([, t]) => t);
      const x = torch.randn([1, 2, 4, 4]);
      const y32 = torch.noGrad(() => m.call(x));
      m.to('float64');
      expect([...m.namedParameters(), ...m.namedBuffers()].map(([, t]) => t)).toEqual(tensors);
      expect(tensors.map((t) => t.dtype)).toEqual(['float64', 'float64', 'float64', 'float64']);
      const y64 = torch.noGrad(() => m.call(x.double()));
      expect(y64.dtype).toBe('float64');
      expect(y64.sub(y32.double()).abs().max().item()).toBeLessThan(1e-5);
    });
  });
});
