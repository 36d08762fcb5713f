/** Conv2d, ConvTranspose2d, BatchNorm2d, Embedding and nn.init against PyTorch, in one Python process. */
import { Conv2d, ConvTranspose2d } from '../../ts/nn/conv';
import * as F from '../../ts/nn/functional';
import * as init from '../../ts/nn/init';
import { BatchNorm2d } from '../../ts/nn/batchnorm';
import { Embedding } from '../../ts/nn/layers';
import { type Module } from '../../ts/nn/module';
import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch']);
const withTorch = py ? describe : describe.skip;

// The reference: each layer built after manual_seed(seed), then an input and a cotangent r drawn in
// that order, so the TS side draws the same numbers from the same generator.
const REFERENCE = `
import json, math, torch
torch.set_num_threads(1)
nn = torch.nn
out = {}

def run_layer(name, seed, make, xshape, kind='float'):
    torch.manual_seed(seed)
    m = make()
    init = {k: v.tolist() for k, v in m.state_dict().items()}
    if kind == 'float':
        x = torch.randn(*xshape).requires_grad_(True)
    else:
        x = xshape
    y = m(x)
    r = torch.randn_like(y)
    (y * r).sum().backward()
    d = {'init': init, 'keys': list(m.state_dict().keys()), 'y': y.tolist(), 'shape': list(y.shape),
         'grads': {n: p.grad.tolist() for n, p in m.named_parameters()}}
    if kind == 'float':
        d['xgrad'] = x.grad.tolist()
    d['after'] = {k: v.tolist() for k, v in m.state_dict().items()}
    if isinstance(m, nn.BatchNorm2d):
        m.eval()
        x2 = torch.randn(2, m.num_features, 3, 4)
        d['eval'] = m(x2).tolist()
    out[name] = d

run_layer('conv_a', 0, lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1), (2, 3, 9, 7))
run_layer('conv_b', 1, lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2), (2, 4, 8, 8))
run_layer('conv_c', 2, lambda: nn.Conv2d(2, 3, 2, bias=False), (2, 5, 5))
run_layer('conv_d', 25, lambda: nn.Conv2d(2, 3, (2, 3), padding='same', dilation=(2, 1)), (2, 2, 6, 5))
run_layer('conv_e', 26, lambda: nn.Conv2d(2, 3, 3, stride=2, padding='valid'), (2, 2, 7, 6))
run_layer('convt_a', 3, lambda: nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), (2, 8, 5, 5))
run_layer('convt_b', 4, lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 4, 3))
run_layer('convt_c', 5, lambda: nn.ConvTranspose2d(3, 2, (2, 3), stride=(1, 2), dilation=2, bias=False), (3, 4, 4))
run_layer('bn_a', 6, lambda: nn.BatchNorm2d(3), (4, 3, 5, 5))
run_layer('bn_b', 7, lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=0.3, affine=False), (4, 3, 5, 5))
run_layer('bn_c', 8, lambda: nn.BatchNorm2d(3, track_running_stats=False), (4, 3, 5, 5))
idx = torch.tensor([[1, 2, 4], [4, 3, 9]])
run_layer('emb_a', 9, lambda: nn.Embedding(10, 4), idx, kind='idx')
run_layer('emb_b', 10, lambda: nn.Embedding(10, 4, padding_idx=-8), idx, kind='idx')

I = nn.init
inits = {}
def rec(name, seed, shape, fn):
    torch.manual_seed(seed)
    t = torch.empty(*shape).fill_(7.0).requires_grad_(True)
    r = fn(t)
    assert r is t
    inits[name] = t.tolist()
rec('normal', 11, (5, 7), lambda t: I.normal_(t, 0.5, 2.0))
rec('normal_default', 12, (5, 7), lambda t: I.normal_(t))
rec('uniform', 13, (5, 7), lambda t: I.uniform_(t, -1.0, 3.0))
rec('uniform_default', 14, (5, 7), lambda t: I.uniform_(t))
rec('constant', 15, (5, 7), lambda t: I.constant_(t, 0.25))
rec('ones', 16, (5, 7), lambda t: I.ones_(t))
rec('zeros', 17, (5, 7), lambda t: I.zeros_(t))
rec('xavier', 18, (6, 4, 3, 3), lambda t: I.xavier_uniform_(t, gain=1.5))
rec('xavier_default', 19, (20, 30), lambda t: I.xavier_uniform_(t))
rec('kaiming_default', 20, (6, 4, 3, 3), lambda t: I.kaiming_uniform_(t))
rec('kaiming_relu_fan_out', 21, (6, 4, 3, 3), lambda t: I.kaiming_uniform_(t, a=0.2, mode='fan_out', nonlinearity='relu'))
rec('kaiming_sqrt5', 22, (16, 8), lambda t: I.kaiming_uniform_(t, a=math.sqrt(5)))
rec('kaiming_leaky', 23, (16, 8, 2, 2), lambda t: I.kaiming_uniform_(t, a=0.2, nonlinearity='leaky_relu'))
rec('kaiming_tanh', 24, (16, 8), lambda t: I.kaiming_uniform_(t, nonlinearity='tanh'))
out['init'] = inits
out['gain'] = {k: I.calculate_gain(k) for k in ['linear', 'conv2d', 'conv_transpose2d', 'sigmoid', 'tanh', 'relu', 'leaky_relu', 'selu']}
out['gain']['leaky_relu_0.2'] = I.calculate_gain('leaky_relu', 0.2)
print(json.dumps(out))
`;

type Nested = number | Nested[];
interface LayerRef {
  init: Record<string, Nested>;
  keys: string[];
  y: Nested;
  shape: number[];
  grads: Record<string, Nested>;
  xgrad?: Nested;
  after: Record<string, Nested>;
  eval?: Nested;
}

const maxDiff = (t: Tensor, ref: Nested): number => {
  const r = torch.tensor(ref as number[], { dtype: 'float64' });
  expect(t.shape).toEqual(r.shape);
  return t.double().sub(r).abs().max().item();
};

withTorch('conv, batch norm, embedding and init match PyTorch', () => {
  let ref: Record<string, LayerRef> & { init: Record<string, Nested>; gain: Record<string, number> };
  beforeAll(() => {
    torch.setNumThreads(1);
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE]));
  });

  const run = (name: string, seed: number, make: () => Module, input: number[] | (() => Tensor)) => {
    const r = ref[name] as LayerRef;
    torch.manualSeed(seed);
    const m = make();
    const sd0 = m.stateDict();
    expect(Object.keys(sd0)).toEqual(r.keys);
    // bit for bit: float32 values survive JSON as doubles exactly
    for (const k of r.keys) expect([k, sd0[k].tolist()]).toEqual([k, r.init[k]]);
    const x = Array.isArray(input) ? torch.randn(input).requiresGrad_() : input();
    const y = m.forward(x);
    expect(y.shape).toEqual(r.shape);
    const cot = torch.randnLike(y);
    y.mul(cot).sum().backward();
    expect(maxDiff(y, r.y)).toBeLessThan(1e-5);
    for (const [n, p] of m.namedParameters()) expect(maxDiff(p.grad!, r.grads[n])).toBeLessThan(1e-5);
    expect(m.namedParameters().map(([n]) => n)).toEqual(Object.keys(r.grads));
    if (r.xgrad) expect(maxDiff(x.grad!, r.xgrad)).toBeLessThan(1e-5);
    const sd = m.stateDict();
    for (const k of r.keys) expect(maxDiff(sd[k], r.after[k])).toBeLessThan(1e-6);
    return { m, r };
  };

  it('Conv2d: init bit for bit, forward and gradients (stride, padding, dilation, groups, no bias, 3-D input)', () => {
    run('conv_a', 0, () => new Conv2d(3, 8, 3, { stride: 2, padding: 1 }), [2, 3, 9, 7]);
    run('conv_b', 1, () => new Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 }), [2, 4, 8, 8]);
    const { m } = run('conv_c', 2, () => new Conv2d(2, 3, 2, { bias: false }), [2, 5, 5]);
    expect(Object.keys(m.stateDict())).toEqual(['weight']);
    const same = run('conv_d', 25, () => new Conv2d(2, 3, [2, 3], { padding: 'same', dilation: [2, 1] }), [2, 2, 6, 5]);
    expect(same.r.shape).toEqual([2, 3, 6, 5]);
    expect(same.m.toString()).toBe('Conv2d(2, 3, kernel_size=(2, 3), stride=(1, 1), padding=same, dilation=(2, 1))');
    run('conv_e', 26, () => new Conv2d(2, 3, 3, { stride: 2, padding: 'valid' }), [2, 2, 7, 6]);
  });

  it('ConvTranspose2d: weight [in, out/groups, kh, kw], fan_in from dim 1, forward and gradients', () => {
    const { m } = run('convt_a', 3, () => new ConvTranspose2d(8, 4, 4, { stride: 2, padding: 1 }), [2, 8, 5, 5]);
    expect((m as ConvTranspose2d).weight.shape).toEqual([8, 4, 4, 4]);
    run('convt_b', 4, () => new ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), [2, 4, 4, 3]);
    run('convt_c', 5, () => new ConvTranspose2d(3, 2, [2, 3], { stride: [1, 2], dilation: 2, bias: false }), [3, 4, 4]);
  });

  it('BatchNorm2d: keys, running stats after a train-mode forward, eval-mode output', () => {
    const evalCheck = (m: Module, r: LayerRef) => {
      m.eval();
      expect(maxDiff(m.forward(torch.randn([2, 3, 3, 4])), r.eval!)).toBeLessThan(1e-5);
    };
    const a = run('bn_a', 6, () => new BatchNorm2d(3), [4, 3, 5, 5]);
    expect(a.r.keys).toEqual(['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']);
    expect(a.m.stateDict().num_batches_tracked.item()).toBe(1);
    evalCheck(a.m, a.r);
    expect(a.m.stateDict().num_batches_tracked.item()).toBe(1);
    const b = run('bn_b', 7, () => new BatchNorm2d(3, { eps: 1e-3, momentum: 0.3, affine: false }), [4, 3, 5, 5]);
    expect(b.r.keys).toEqual(['running_mean', 'running_var', 'num_batches_tracked']);
    evalCheck(b.m, b.r);
    // without running stats, eval mode normalizes by the batch's own statistics
    const c = run('bn_c', 8, () => new BatchNorm2d(3, { trackRunningStats: false }), [4, 3, 5, 5]);
    expect(c.r.keys).toEqual(['weight', 'bias']);
    evalCheck(c.m, c.r);
  });

  it('Embedding: N(0, 1) init bit for bit, lookup and gradient; paddingIdx row zero and without gradient', () => {
    const idx = () =>
      torch.tensor([
        [1n, 2n, 4n],
        [4n, 3n, 9n],
      ]);
    run('emb_a', 9, () => new Embedding(10, 4), idx);
    const { m } = run('emb_b', 10, () => new Embedding(10, 4, { paddingIdx: -8 }), idx);
    expect((m as Embedding).paddingIdx).toBe(2);
    expect((m as Embedding).weight.grad!.select(0, 2).abs().sum().item()).toBe(0);
  });

  it('nn.init: each function equals torch.nn.init after the same seed, and returns its tensor', () => {
    const cases: [string, number, number[], (t: Tensor) => Tensor][] = [
      ['normal', 11, [5, 7], (t) => init.normal_(t, 0.5, 2.0)],
      ['normal_default', 12, [5, 7], (t) => init.normal_(t)],
      ['uniform', 13, [5, 7], (t) => init.uniform_(t, -1.0, 3.0)],
      ['uniform_default', 14, [5, 7], (t) => init.uniform_(t)],
      ['constant', 15, [5, 7], (t) => init.constant_(t, 0.25)],
      ['ones', 16, [5, 7], (t) => init.ones_(t)],
      ['zeros', 17, [5, 7], (t) => init.zeros_(t)],
      ['xavier', 18, [6, 4, 3, 3], (t) => init.xavierUniform_(t, 1.5)],
      ['xavier_default', 19, [20, 30], (t) => init.xavierUniform_(t)],
      ['kaiming_default', 20, [6, 4, 3, 3], (t) => init.kaimingUniform_(t)],
      ['kaiming_relu_fan_out', 21, [6, 4, 3, 3], (t) => init.kaimingUniform_(t, 0.2, 'fan_out', 'relu')],
      ['kaiming_sqrt5', 22, [16, 8], (t) => init.kaimingUniform_(t, Math.sqrt(5))],
      ['kaiming_leaky', 23, [16, 8, 2, 2], (t) => init.kaimingUniform_(t, 0.2, 'fan_in', 'leaky_relu')],
      ['kaiming_tanh', 24, [16, 8], (t) => init.kaimingUniform_(t, 0, 'fan_in', 'tanh')],
    ];
    for (const [name, seed, shape, fn] of cases) {
      torch.manualSeed(seed);
      // a leaf that requires grad: in-place init must run under no_grad, as PyTorch's
      const t = torch.full(shape, 7, { requiresGrad: true });
      expect(fn(t)).toBe(t);
      expect([name, t.tolist()]).toEqual([name, ref.init[name]]);
    }
    for (const [k, v] of Object.entries(ref.gain)) {
      const [nl, p] = k.split('_0.');
      expect([k, init.calculateGain(nl as init.Nonlinearity, p ? Number(`0.${p}`) : undefined)]).toEqual([k, v]);
    }
  });
});

describe('conv, batch norm, embedding and init: bad input', () => {
  it('Conv2d and ConvTranspose2d name the value and the expected form', () => {
    const c = new Conv2d(1, 64, 4);
    expect(() => c.forward(torch.ones([8, 784]))).toThrow(
      'Conv2d(1, 64, kernel_size=(4, 4)): expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got shape [8, 784]',
    );
    expect(() => c.forward(torch.ones([8, 3, 28, 28]))).toThrow(
      'Conv2d(1, 64, kernel_size=(4, 4)): expected input with 1 channels (dimension 1), got shape [8, 3, 28, 28]',
    );
    expect(() => new Conv2d(1, 1, 5, { padding: 1 }).forward(torch.ones([1, 1, 2, 9]))).toThrow(
      'Conv2d(1, 1, kernel_size=(5, 5)): input of shape [1, 1, 2, 9]: the kernel (5 x 5, dilation 1 x 1) is larger than the padded input (4 x 11)',
    );
    expect(() => new Conv2d(1, 1, 2, { dilation: 3 }).forward(torch.ones([1, 3, 3]))).toThrow(
      /kernel \(2 x 2, dilation 3 x 3\) is larger than the padded input \(3 x 3\)/,
    );
    expect(() => new Conv2d(1.5, 2, 3)).toThrow('Conv2d inChannels: expected a positive integer, got 1.5');
    expect(() => new Conv2d(1, 2, [3, 2.5])).toThrow('Conv2d kernelSize: expected a positive integer or a pair of them, got [3,2.5]');
    expect(() => new Conv2d(1, 2, 3, { padding: -1 })).toThrow('Conv2d padding: expected a non-negative integer or a pair of them, got -1');
    expect(() => new Conv2d(1, 2, 3, { stride: [1, 1, 1] as never })).toThrow('Conv2d stride: expected a positive integer or a pair of them, got [1,1,1]');
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow('Conv2d: in_channels (3) must be divisible by groups (2)');
    expect(() => new ConvTranspose2d(4, 3, 3, { groups: 2 })).toThrow('ConvTranspose2d: out_channels (3) must be divisible by groups (2)');
    expect(() => new ConvTranspose2d(4, 3, 3, { stride: 2, outputPadding: 2 })).toThrow(
      'ConvTranspose2d outputPadding: output padding must be smaller than either stride or dilation, got output_padding=(2, 2), stride=(2, 2), dilation=(1, 1)',
    );
    expect(() => new ConvTranspose2d(4, 3, 3).forward(torch.ones([4, 5]))).toThrow(
      'ConvTranspose2d(4, 3, kernel_size=(3, 3)): expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got shape [4, 5]',
    );
    expect(() => new ConvTranspose2d(1, 1, 1, { padding: 1 }).forward(torch.ones([1, 1, 1, 1]))).toThrow(
      'ConvTranspose2d(1, 1, kernel_size=(1, 1)): input of shape [1, 1, 1, 1]: the output would be -1 x -1',
    );
  });

  it('string padding: Conv2d only, and same only unstrided', () => {
    expect(() => new Conv2d(1, 1, 3, { padding: 'full' as never })).toThrow(
      `Conv2d padding: expected 'same', 'valid', a non-negative integer or a pair of them, got "full"`,
    );
    expect(() => new Conv2d(1, 1, 3, { padding: 'same', stride: [1, 2] })).toThrow(
      "Conv2d: padding='same' is not supported for strided convolutions (stride=(1, 2))",
    );
    expect(() => new ConvTranspose2d(1, 1, 3, { padding: 'same' as never })).toThrow(
      'ConvTranspose2d padding: expected a non-negative integer or a pair of them, got "same"',
    );
    // 'same' keeps even a 1 x 1 input, where the kernel is larger than the input
    expect(new Conv2d(1, 2, 3, { padding: 'same' }).forward(torch.ones([1, 1, 1, 1])).shape).toEqual([1, 2, 1, 1]);
  });

  it('oneHot, and cat on dim 1 (a conditional GAN input)', () => {
    const labels = torch.tensor([0n, 2n, 1n]);
    const oh = F.oneHot(labels, 4);
    expect(oh.dtype).toBe('int64');
    expect(oh.tolist()).toEqual([
      [1, 0, 0, 0],
      [0, 0, 1, 0],
      [0, 1, 0, 0],
    ]);
    expect(F.oneHot(labels).shape).toEqual([3, 3]);
    const z = torch.zeros([3, 2]);
    expect(torch.cat([z, oh.float()], 1).tolist()).toEqual([
      [0, 0, 1, 0, 0, 0],
      [0, 0, 0, 0, 1, 0],
      [0, 0, 0, 1, 0, 0],
    ]);
    expect(() => F.oneHot(labels, 2.5)).toThrow('oneHot numClasses: expected a positive integer or -1, got 2.5');
  });

  it('BatchNorm2d, Embedding and nn.init', () => {
    expect(() => new BatchNorm2d(3).forward(torch.ones([4, 3]))).toThrow('BatchNorm2d(3): expected a 4-D input [N, 3, H, W], got shape [4, 3]');
    expect(() => new BatchNorm2d(3).forward(torch.ones([4, 2, 5, 5]))).toThrow('BatchNorm2d(3): expected a 4-D input [N, 3, H, W], got shape [4, 2, 5, 5]');
    expect(() => new BatchNorm2d(2.5)).toThrow('BatchNorm2d numFeatures: expected a positive integer, got 2.5');
    expect(() => new Embedding(10, 4).forward(torch.ones([3]))).toThrow('Embedding(10, 4): expected an int64 (or int32) tensor of indices, got dtype float32');
    expect(() => new Embedding(10, 4, { paddingIdx: 10 })).toThrow('Embedding paddingIdx: must be an integer within num_embeddings (10), got 10');
    expect(() => init.xavierUniform_(torch.ones([5]))).toThrow(
      'Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (got shape [5])',
    );
    expect(() => init.normal_(torch.ones([2, 2]), 0, -1)).toThrow('nn.init.normal_: expects std >= 0.0, but found std -1');
    expect(() => init.kaimingUniform_(torch.ones([2, 2]), 0, 'fan' as never)).toThrow(/mode "fan" not supported/);
    expect(() => init.uniform_({} as never)).toThrow('nn.init.uniform_: expected a Tensor, got object');
  });
});
