/**
 * What the native kernels read is checked before they touch memory (issue 11, item 1), and the fused
 * step's entry points name a bad argument and its expected form (item 12).
 *
 * Tensors are swapped under an optimizer with aten::set_ (as `.data = ...` would), the one way JS can
 * hand a fused kernel a state or parameter of another size once `.grad` is checked.
 */
import { GanStep } from '../../ts/gan/gan-step';
import { noise } from '../../ts/gan/noise';
import { getPreset } from '../../ts/gan/presets';
import { loadAddon, type NativeTensor } from '../../ts/native/addon';
import { fromSpec } from '../../ts/nn/from-spec';
import { Adam, SGD } from '../../ts/optim/index';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';

const addon = loadAddon();

/** Points `t` at `src`'s storage and shape (aten::set_, outside autograd). */
function swapData(t: NativeTensor, src: Tensor): void {
  const was = addon.setGradEnabled(false);
  try {
    addon.op('aten::set_', 'source_Tensor').call([t, src._native]);
  } finally {
    addon.setGradEnabled(was);
  }
}

function param(shape: number[]): Tensor {
  const w = torch.zeros(shape);
  w.requiresGrad = true;
  return w;
}

const allFinite = (t: Tensor) => Array.from(t.toFloat32Array()).every(Number.isFinite);

describe('setGrad is checked as PyTorch checks `x.grad = g`', () => {
  it("the issue's crash: a 0-element grad for a 2^26-element fused-Adam weight is refused, and step() stays safe", () => {
    const w = param([1 << 26]);
    const opt = new Adam([w], { lr: 1, fused: true });
    expect(() => {
      w.grad = torch.zeros([0]);
    }).toThrow(/size/);
    expect(() => w._native.setGrad(torch.zeros([0])._native)).toThrow('assigned grad has data of a different size: the grad is [0], the tensor [67108864]');
    expect(w.grad).toBeNull();
    opt.step(); // no gradient: nothing to update
    w.dispose();
  });

  it('a short grad of a 200x300 weight is refused before it can write NaN into the weights', () => {
    const w = param([200, 300]);
    const opt = new Adam([w], { lr: 1, fused: true });
    expect(() => w._native.setGrad(torch.zeros([5])._native)).toThrow('assigned grad has data of a different size: the grad is [5], the tensor [200, 300]');
    w.grad = torch.ones([200, 300]);
    opt.step();
    expect(allFinite(w)).toBe(true);
  });

  it('dtype, its own grad and a missing value are refused; null clears', () => {
    const w = param([3]);
    expect(() => w._native.setGrad(torch.zeros([3], { dtype: 'float64' })._native)).toThrow(
      'assigned grad has data of a different type: the grad is float64, the tensor float32',
    );
    expect(() => w._native.setGrad(w._native)).toThrow("can't assign Variable as its own grad");
    expect(() => w._native.setGrad(undefined as unknown as null)).toThrow('setGrad(grad): expected a Tensor or null, got undefined');
    w._native.setGrad(torch.ones([3])._native);
    expect(w.grad).not.toBeNull();
    w._native.setGrad(null);
    expect(w.grad).toBeNull();
  });
});

describe('the optimizers check every tensor they read against its parameter', () => {
  it('fused Adam: a state tensor swapped for a 1-element one is an error naming it, not a heap overrun', () => {
    const w = param([200, 300]);
    const opt = new Adam([w], { fused: true });
    w.grad = torch.ones([200, 300]);
    opt.step();
    swapData(opt._native.getState()[0]!.expAvg, torch.zeros([1]));
    expect(() => opt.step()).toThrow("Adam.step: params[0]: exp_avg has shape [1], expected the parameter's shape [200, 300]");
    expect(allFinite(w)).toBe(true);
  });

  it('fused Adam: a parameter grown after its state was made is an error, not a write past the state', () => {
    const w = param([10]);
    const opt = new Adam([w], { fused: true });
    w.grad = torch.ones([10]);
    opt.step();
    swapData(w._native, torch.zeros([1 << 20]));
    w.grad = torch.ones([1 << 20]);
    expect(() => opt.step()).toThrow("Adam.step: params[0]: exp_avg has shape [10], expected the parameter's shape [1048576]");
  });

  it('single-tensor Adam and SGD: a state that would broadcast is an error naming it', () => {
    const w = param([200, 300]);
    const adam = new Adam([w]);
    w.grad = torch.ones([200, 300]);
    adam.step();
    swapData(adam._native.getState()[0]!.expAvgSq, torch.zeros([300]));
    expect(() => adam.step()).toThrow("Adam.step: params[0]: exp_avg_sq has shape [300], expected the parameter's shape [200, 300]");

    const v = param([200, 300]);
    const sgd = new SGD([v], { momentum: 0.9 });
    v.grad = torch.ones([200, 300]);
    sgd.step();
    swapData(sgd._native.getState()[0]!.momentumBuffer!, torch.zeros([300]));
    expect(() => sgd.step()).toThrow("SGD.step: params[0]: momentum_buffer has shape [300], expected the parameter's shape [200, 300]");
  });

  it("capturable updates (PyTorch's fused kernels) check state before the kernel runs", () => {
    const p = getPreset('vanilla');
    const G = fromSpec(p.generator);
    const D = fromSpec(p.discriminator);
    const optG = new Adam(G.parameters(), { lr: 2e-4 });
    const optD = new Adam(D.parameters(), { lr: 2e-4 });
    const gan = new GanStep(G, D, optG, optD, p.step, { capturable: true });
    gan.step(torch.rand([8, 784]));
    const shape = D.parameters()[0].shape;
    swapData(optD._native.getState()[0]!.expAvg, torch.zeros([1]));
    expect(() => gan.step(torch.rand([8, 784]))).toThrow(
      `Adam (capturable): params[0]: exp_avg has shape [1], expected the parameter's shape [${shape.join(', ')}]`,
    );
  });
});

describe('GanStep and trainEpoch name a bad argument and the expected form', () => {
  const p = getPreset('vanilla');
  const build = () => {
    const G = fromSpec(p.generator);
    const D = fromSpec(p.discriminator);
    return { G, D, optG: new Adam(G.parameters()), optD: new Adam(D.parameters()) };
  };
  const data = torch.zeros([20, 784], { dtype: 'uint8' });

  it('GanStep: missing models or optimizers, a null spec, options of the wrong type; null options are none', () => {
    const { G, D, optG, optD } = build();
    const any = (v: unknown) => v as never;
    expect(() => new GanStep(G, D, optG, any(undefined), p.step)).toThrow('GanStep(optD): expected an optimizer (optim.Adam or optim.SGD), got undefined');
    expect(() => new GanStep(any(null), D, optG, optD, p.step)).toThrow('GanStep(generator): expected an nn.Module, got null');
    expect(() => new GanStep(G, D, optG, optD, any(null))).toThrow('GanStep: spec: expected an object, got null');
    expect(() => new GanStep(G, D, optG, optD, p.step, any(5))).toThrow(
      'GanStep(options): expected an object { capturable?, cudaGraphs?, fastPath?, precision?, processGroup? }, got 5',
    );
    expect(() => new GanStep(G, D, optG, optD, p.step, { processGroup: any({ rank: 0 }) })).toThrow(
      'GanStep(options): processGroup: expected a dist.ProcessGroup (dist.group.WORLD), got an object',
    );
    expect(new GanStep(G, D, optG, optD, p.step, null).capturable).toBe(false);
  });

  it('trainEpoch: null or missing options, NaN and negative seeds, NaN progressEvery, an unknown normalize, a non-function onProgress', async () => {
    const { G, D, optG, optD } = build();
    const gan = new GanStep(G, D, optG, optD, p.step);
    const run = (o: unknown) => gan.trainEpoch(data, o as never);
    await expect(run(null)).rejects.toThrow('trainEpoch(options): expected an object { batchSize, shuffle?, seed?, signal?, onProgress?, ... }, got null');
    await expect(gan.trainEpoch(data, undefined as never)).rejects.toThrow(/trainEpoch\(options\): expected an object .* got undefined/);
    await expect(run({ batchSize: 10, seed: Number.NaN })).rejects.toThrow('trainEpoch: seed: expected an integer, got NaN');
    await expect(run({ batchSize: 10, seed: -1 })).rejects.toThrow('trainEpoch: seed must be an integer >= 0, got -1');
    await expect(run({ batchSize: 10, progressEvery: Number.NaN })).rejects.toThrow('trainEpoch: progressEvery: expected an integer, got NaN');
    await expect(run({ batchSize: 10, normalize: '[0,255]' })).rejects.toThrow("trainEpoch: normalize: expected one of '[-1,1]', '[0,1]', got '[0,255]'");
    await expect(run({ batchSize: 10, onProgress: 5 })).rejects.toThrow('trainEpoch: onProgress: expected a function, got 5');
    await expect(run({ batchSize: 10, recordSteps: 'yes' })).rejects.toThrow("trainEpoch: recordSteps: expected a boolean, got 'yes'");
    await expect(run({ batchSize: 10, signal: 'stop' })).rejects.toThrow('trainEpoch: signal: expected an AbortSignal, got "stop"');
    expect(gan.busy).toBe(false);
    expect((await gan.trainEpoch(data, { batchSize: 10 })).steps).toBe(2);
  });

  it('an error thrown in onProgress rejects the epoch with that very error, at the next step boundary', async () => {
    const { G, D, optG, optD } = build();
    const gan = new GanStep(G, D, optG, optD, p.step);
    const boom = new Error('boom in onProgress');
    let calls = 0;
    const big = torch.zeros([400, 784], { dtype: 'uint8' });
    const err = await gan
      .trainEpoch(big, {
        batchSize: 10,
        progressEvery: 1,
        onProgress: () => {
          calls++;
          throw boom;
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(calls).toBe(1);
    expect(gan.busy).toBe(false);
    // A thrown primitive is kept as it was thrown.
    await expect(
      gan.trainEpoch(data, {
        batchSize: 10,
        progressEvery: 1,
        onProgress: () => {
          throw 'a string';
        },
      }),
    ).rejects.toBe('a string');
  });

  it('noise: a NaN count or dimension names the value, never an int64 overflow', () => {
    expect(() => noise(p.step.noise, Number.NaN)).toThrow('noise count: expected an integer >= 1, got NaN');
    expect(() => noise({ dist: 'normal', dim: Number.NaN }, 4)).toThrow('noise.dim: expected an integer >= 1, got NaN');
    expect(() => noise({ dist: 'uniform', dim: 4, low: Number.NaN }, 4)).toThrow('noise.low: expected a finite number, got NaN');
    expect(() => noise(p.step.noise, 4, { seed: Number.NaN })).toThrow('noise: seed: expected an integer >= 0, got NaN');
    expect(() => noise(p.step.noise, 4, { device: 'tpu' as never })).toThrow("noise: device: expected 'cpu', 'cuda' or 'cuda:N', got");
    const { G, D, optG, optD } = build();
    const gan = new GanStep(G, D, optG, optD, p.step);
    expect(() => gan.noise(Number.NaN)).toThrow('noise(n): expected an integer, got NaN');
    expect(() => gan.noise(2 ** 60)).toThrow('noise(n) must be an integer >= 0, got 1152921504606847000');
    expect(noise(p.step.noise, 3).shape).toEqual([3, 100]);
  });
});

test('cuda.synchronize(device) takes a CUDA device (as torch.cuda.synchronize) and names anything else', () => {
  expect(() => torch.cuda.synchronize('cpu')).toThrow("cuda.synchronize(device): expected a CUDA device ('cuda', 'cuda:N' or an index N), got 'cpu'");
  expect(() => torch.cuda.synchronize('tpu' as never)).toThrow("cuda.synchronize(device): expected a CUDA device ('cuda', 'cuda:N' or an index N), got 'tpu'");
  expect(() => torch.cuda.synchronize(-1)).toThrow('cuda.synchronize(device) must be an integer in [0, 127], got -1');
  expect(() => torch.cuda.synchronize(1.5)).toThrow(/^cuda.synchronize\(device\): expected an integer, got 1.5/);
});

(torch.cuda.isAvailable() ? describe.skip : describe)('CUDA asked for without a usable GPU', () => {
  it('is one message, whatever the op: "CUDA is not available: <why>; use device \'cpu\'"', () => {
    const msg = /CUDA is not available: .+; use device 'cpu'$/;
    const seen = new Set<string>();
    for (const f of [
      () => torch.zeros([2], { device: 'cuda' }),
      () => torch.zeros([2]).to('cuda'),
      () => torch.getRngState('cuda'),
      () => torch.randn([2], { device: 'cuda:1' }),
      // as torch.cuda.synchronize: an error without CUDA, not a silent no-op
      () => torch.cuda.synchronize(),
      () => torch.cuda.synchronize('cuda:1'),
      () => torch.cuda.synchronize(0),
    ]) {
      let message = '';
      try {
        f();
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(msg);
      seen.add(message.replace(/^.*?CUDA is not available/, 'CUDA is not available'));
    }
    expect(seen.size).toBe(1);
  });
});
