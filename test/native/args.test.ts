/**
 * The native argument readers (native/js_args.h): a wrong type, an out-of-range value or an unknown
 * enum string is an error naming the field, the value and what is allowed, never a silent default.
 * These call the addon's classes directly, with the option objects the facade would pass.
 */
import { loadAddon, type NativeGanSpec, type NativeGanStepOptions, type NativeLayer } from '../../ts/native/addon';
import { toNativeLayers } from '../../ts/nn/from-spec';
import { LeakyReLU, Linear, Sequential, Sigmoid, Tanh } from '../../ts/nn/layers';
import { Adam, SGD } from '../../ts/optim/optimizer';
import { callOp, type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';

const spec: NativeGanSpec = {
  loss: 'bce',
  realLabel: 1,
  fakeLabel: 0,
  dLossReduction: 'sum',
  detachFakeForD: true,
  gNoise: 'fresh',
  separateDBackward: false,
  noise: { dist: 'normal', dim: 8 },
};

function models() {
  torch.manualSeed(0);
  const G = new Sequential(new Linear(8, 16), new LeakyReLU(0.2), new Linear(16, 4), new Tanh());
  const D = new Sequential(new Linear(4, 8), new LeakyReLU(0.2), new Linear(8, 1), new Sigmoid());
  return { G, D, optG: new Adam(G.parameters()), optD: new Adam(D.parameters()) };
}

/** NativeGanStep's options for two small models, with `change` applied (on a copy). */
function ganOptions(change: (o: NativeGanStepOptions) => void = () => {}): NativeGanStepOptions {
  const { G, D, optG, optD } = models();
  const o: NativeGanStepOptions = {
    g: toNativeLayers(G) as NativeLayer[],
    d: toNativeLayers(D) as NativeLayer[],
    optG: optG._native,
    optD: optD._native,
    spec: structuredClone(spec),
  };
  change(o);
  return o;
}

const newGan = (o: NativeGanStepOptions) => new (loadAddon().NativeGanStep)(o);
/** Sets a field to a value its type does not allow (what a JS caller or a hand-written config can do). */
const put = (o: unknown, key: string, v: unknown) => ((o as Record<string, unknown>)[key] = v);

describe('native argument readers', () => {
  it('the valid options build a step that trains', () => {
    const gan = newGan(ganOptions());
    const r = gan.step(torch.rand([4, 4])._native);
    expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
  });

  it.each([
    ['dLossReduction', 'meen', "GanStep: spec.dLossReduction: expected one of 'sum', 'mean', got 'meen'"],
    ['loss', 'bceLogits', "GanStep: spec.loss: expected one of 'bceWithLogits', 'bce', 'leastSquares', 'hinge', 'wasserstein', got 'bceLogits'"],
    ['gNoise', 'Reuse', "GanStep: spec.gNoise: expected one of 'fresh', 'reuse', got 'Reuse'"],
    ['dLossReduction', undefined, "GanStep: spec.dLossReduction: expected one of 'sum', 'mean', got undefined"],
  ])('an unknown GanStep spec.%s (%p) is an error naming the value and the allowed ones', (key, value, message) => {
    expect(() => newGan(ganOptions((o) => put(o.spec, key, value)))).toThrow(message);
  });

  it('an unknown noise distribution is an error, not normal noise', () => {
    expect(() => newGan(ganOptions((o) => put(o.spec.noise, 'dist', 'gaussian')))).toThrow(
      "GanStep: spec.noise.dist: expected one of 'normal', 'uniform', got 'gaussian'",
    );
  });

  it('a non-number where a number is required names the field', () => {
    expect(() => newGan(ganOptions((o) => put(o.spec, 'realLabel', '0.9')))).toThrow("GanStep: spec.realLabel: expected a finite number, got '0.9'");
    expect(() => newGan(ganOptions((o) => put(o.spec.noise, 'dim', 2.5)))).toThrow('GanStep: spec.noise.dim: expected an integer, got 2.5');
    expect(() => newGan(ganOptions((o) => put(o.spec.noise, 'dim', 0)))).toThrow('GanStep: spec.noise.dim must be a positive integer, got 0');
    expect(() => newGan(ganOptions((o) => put(o.spec, 'detachFakeForD', 1)))).toThrow('GanStep: spec.detachFakeForD: expected a boolean, got 1');
    expect(() => newGan(ganOptions((o) => put(o, 'capturable', 'no')))).toThrow("GanStep: capturable: expected a boolean, got 'no'");
  });

  it('layer fields are named by the layer: an unknown kind lists the supported ones', () => {
    expect(() => newGan(ganOptions((o) => put(o.g[1], 'kind', 'GELU')))).toThrow(
      "GanStep: generator.1.kind: expected one of 'Linear', 'ReLU', 'LeakyReLU', 'Tanh', 'Sigmoid', 'Dropout', 'BatchNorm1d', 'BatchNorm2d', 'Flatten', 'Unflatten', 'Conv2d', 'ConvTranspose2d', got 'GELU'",
    );
    expect(() => newGan(ganOptions((o) => put(o.d[1], 'negativeSlope', null)))).toThrow(
      'GanStep: discriminator.1.negativeSlope: expected a finite number, got null',
    );
    expect(() => newGan(ganOptions((o) => put(o.g[0], 'weight', 3)))).toThrow('GanStep: generator.0.weight: expected a Tensor, got 3');
    expect(() => newGan(ganOptions((o) => put(o, 'optD', {})))).toThrow('GanStep: optD: expected an optimizer (optim.Adam or optim.SGD), got an object');
  });

  it("a Linear's spectralNorm fields are read by name and checked against the weight (u [rows], v [columns] of it as a matrix)", () => {
    // D's first Linear is [8, 4]: u has 8 values, v 4
    const sn = (fields: Record<string, unknown>) => (o: NativeGanStepOptions) =>
      put(o.d[0], 'spectralNorm', { u: torch.ones([8])._native, v: torch.ones([4])._native, nPowerIterations: 1, eps: 1e-12, dim: 0, ...fields });
    newGan(ganOptions(sn({}))); // valid
    expect(() => newGan(ganOptions(sn({ eps: 0 })))).toThrow('GanStep: discriminator.0.spectralNorm.eps must be a number > 0, got 0');
    expect(() => newGan(ganOptions(sn({ nPowerIterations: 0 })))).toThrow(
      'GanStep: discriminator.0.spectralNorm.nPowerIterations must be a positive integer, got 0',
    );
    expect(() => newGan(ganOptions(sn({ u: [1, 2] })))).toThrow('GanStep: discriminator.0.spectralNorm.u: expected a Tensor, got an array');
    expect(() => newGan(ganOptions(sn({ dim: 2 })))).toThrow('discriminator.0.spectralNorm.dim: expected a dimension of the weight (0 to 1), got 2');
    expect(() => newGan(ganOptions(sn({ v: torch.ones([8])._native })))).toThrow(
      'discriminator.0.spectralNorm.v: expected shape [4] (the weight [8, 4] as a matrix with dimension 0 first), got [8]',
    );
    expect(() => newGan(ganOptions(sn({ dim: 1 })))).toThrow(
      'discriminator.0.spectralNorm.u: expected shape [4] (the weight [8, 4] as a matrix with dimension 1 first), got [8]',
    );
    expect(() => newGan(ganOptions(sn({ u: torch.ones([8], { dtype: 'float64' })._native })))).toThrow(
      "discriminator.0.spectralNorm.u has dtype Double, the models' parameters Float",
    );
    expect(() => newGan(ganOptions((o) => put(o.d[0], 'spectralNorm', 'yes')))).toThrow("GanStep: discriminator.0.spectralNorm: expected an object, got 'yes'");
  });

  it('trainEpoch options: an unknown normalize mode and non-integers are errors', async () => {
    const gan = newGan(ganOptions());
    const data = torch.randint(0, 256, [8, 4], { dtype: 'uint8' })._native;
    const bad = (o: Record<string, unknown>) => gan.trainEpoch(data, { batchSize: 4, ...o } as never);
    expect(() => bad({ normalize: '[-1, 1]' })).toThrow("trainEpoch: normalize: expected one of '[-1,1]', '[0,1]', got '[-1, 1]'");
    expect(() => bad({ batchSize: '4' })).toThrow("trainEpoch: batchSize: expected an integer, got '4'");
    expect(() => bad({ progressEvery: 0 })).toThrow('trainEpoch: progressEvery must be a positive integer, got 0');
    expect(() => bad({ shuffle: 'false' })).toThrow("trainEpoch: shuffle: expected a boolean, got 'false'");
    expect(() => bad({ seed: -1 })).toThrow('trainEpoch: seed must be an integer >= 0, got -1');
    await expect(bad({ normalize: '[0,1]', progressEvery: 1 })).resolves.toMatchObject({ steps: 2 });
  });

  it('Adam and SGD option errors name the field', () => {
    const params = new Linear(3, 2).parameters();
    const handles = params.map((p) => p._native);
    expect(() => new Adam(params, { lr: 'fast' as never })).toThrow(new TypeError('Adam: lr: expected a finite number, got "fast"'));
    expect(() => new Adam(params, { eps: NaN })).toThrow('Adam: eps: expected a finite number, got NaN');
    expect(() => new (loadAddon().NativeAdam)(handles, { amsgrad: 'yes' as never })).toThrow("Adam: amsgrad: expected a boolean, got 'yes'");
    expect(() => new (loadAddon().NativeAdam)([handles[0], 7 as never])).toThrow('Adam(params)[1]: expected a Tensor, got 7');
    expect(() => new SGD(params, { momentum: '0.9' as never })).toThrow(new TypeError('SGD: momentum: expected a finite number, got "0.9"'));
    expect(() => new (loadAddon().NativeSGD)(handles, { nesterov: 1 as never })).toThrow('SGD: nesterov: expected a boolean, got 1');
  });

  it('setLr and setState errors name the optimizer, the method and the field', () => {
    const lin = new Linear(3, 2);
    const adam = new Adam(lin.parameters());
    expect(() => (adam.paramGroups[0].lr = -1)).toThrow('Adam.setLr(lr) must be a finite number >= 0, got -1');
    const sgd = new SGD(lin.parameters(), { momentum: 0.9 });
    expect(() => (sgd.paramGroups[0].lr = Infinity)).toThrow('SGD.setLr(lr): expected a finite number, got Infinity');
    const t = torch.zeros([2, 3])._native;
    expect(() => adam._native.setState(2, null)).toThrow('Adam.setState(index) must be an integer in [0, 1], got 2');
    expect(() => adam._native.setState(0, { step: 1, expAvg: t } as never)).toThrow('Adam.setState: expAvgSq: expected a Tensor, got undefined');
    expect(() => adam._native.setState(0, { step: 1.5, expAvg: t, expAvgSq: t })).toThrow('Adam.setState: step: expected an integer, got 1.5');
    expect(() => adam._native.setState(1, { step: 1, expAvg: t, expAvgSq: t })).toThrow("Adam.setState: expAvg has shape [2, 3], expected the parameter's [2]");
    expect(() => sgd._native.setState(0, { momentumBuffer: 'buf' as never })).toThrow("SGD.setState: momentumBuffer: expected a Tensor, got 'buf'");
    adam._native.setState(0, { step: 3, expAvg: t, expAvgSq: t }); // a valid state still loads
    expect(adam._native.getState()[0]?.step).toBe(3);
  });

  it('dtypes, devices, memory formats and positional arguments go through the same readers', () => {
    const addon = loadAddon();
    expect(() => addon.fromTypedArray(new Float32Array(1), [1], 'float99' as never, 'cpu')).toThrow(
      "tensor(dtype): expected one of 'float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool', got 'float99'",
    );
    expect(() => addon.fromTypedArray(new Float32Array(1), [1], 'float32', 'meta' as never)).toThrow(
      "tensor(device): expected 'cpu', 'cuda' or 'cuda:N', got 'meta'",
    );
    expect(() => addon.fromTypedArray(new Float32Array(2), [2, -1], 'float32', 'cpu')).toThrow('tensor(shape)[1] must be an integer >= 0, got -1');
    expect(() => addon.getRngState('gpu' as never)).toThrow("getRngState(device): expected 'cpu', 'cuda' or 'cuda:N', got 'gpu'");
    expect(() => addon.manualSeed('7' as never)).toThrow("manualSeed(seed): expected an integer, got '7'");
    expect(() => addon.setNumThreads(0)).toThrow('setNumThreads(n) must be a positive integer <= 2147483647, got 0');
    expect(() => addon.setGradEnabled(0 as never)).toThrow('setGradEnabled(enabled): expected a boolean, got 0');
    expect(() => callOp('aten::empty', 'memory_format', [[2]], { memory_format: 'channels_first' })).toThrow(
      "aten::empty(memory_format): expected one of 'contiguous', 'preserve', 'channels_last', 'channels_last_3d', got 'channels_first'",
    );
    expect(() => callOp('aten::sum', 'dim_IntList', [torch.ones([2]), [0]], { dtype: 'float' })).toThrow(
      /aten::sum\(dtype\): expected one of 'float32', .*got 'float'/,
    );
    expect((callOp('aten::sum', 'dim_IntList', [torch.ones([2]), [0]], { dtype: 'float64' }) as Tensor).dtype).toBe('float64');
  });

  it('autogradGrad reads its tensor arrays and flags with the same readers', () => {
    const addon = loadAddon();
    const x = torch.tensor([1, 2], { requiresGrad: true });
    const y = x.pow(2).sum();
    const flags = { retainGraph: true, createGraph: false, allowUnused: false };
    expect(() => addon.autogradGrad([y._native], [1 as never], null, flags)).toThrow(new TypeError('autograd.grad(inputs)[0]: expected a Tensor, got 1'));
    expect(() => addon.autogradGrad(y._native as never, [x._native], null, flags)).toThrow(
      new TypeError('autograd.grad(outputs): expected an array, got a Tensor'),
    );
    expect(() => addon.autogradGrad([y._native], [x._native], 5 as never, flags)).toThrow(
      new TypeError('autograd.grad(gradOutputs): expected an array, got 5'),
    );
    expect(() => addon.autogradGrad([y._native], [x._native], null, { retainGraph: true } as never)).toThrow(
      new TypeError('autograd.grad: createGraph: expected a boolean, got undefined'),
    );
    expect(addon.autogradGrad([y._native], [x._native], [null], flags)).toHaveLength(1); // null: an implicit gradOutput
  });
});
