/**
 * diffAugment against the authors' own PyTorch code (test/gan/DiffAugment_pytorch.py, their file
 * unchanged), run on the same input after the same manual_seed: the augmented batch, the gradient with
 * respect to x of (y * w).sum() for a random w, and the generator's position afterwards (the next
 * torch.rand values), per policy, for channels-first and channels-last batches, even and odd sizes.
 *
 * Tolerance: 1e-6 of the reference's largest magnitude (float32, one case float64; the same ATen kernels
 * on both sides, one thread each: only another CPU's summation order may differ; on this machine they
 * are equal bit for bit). The random draws themselves are compared
 * exactly, through the generator's position and the translation/cutout masks, which any other draw
 * would move.
 *
 * The facade computes through the addon's diffAugment (native/diff_augment.h), which the fused step calls
 * too: it is also tested directly (its gradient, on the training thread, its own policy parse).
 */
import { DIFF_AUGMENT_POLICIES, diffAugment, parsePolicy } from '../../ts/gan/recipes/diff-augment';
import { loadAddon } from '../../ts/native/addon';
import { grad } from '../../ts/tensor/autograd';
import { Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';
import { findPython, runPython } from '../helpers/python';

const py = findPython(['torch']);
const withTorch = py ? describe : describe.skip;
const REL_TOL = 1e-6;

// name -> [seed, shape, policy, channelsFirst, dtype]
const CASES: Record<string, [number, number[], string, boolean, 'float32' | 'float64']> = {
  color: [1, [4, 3, 8, 8], 'color', true, 'float32'],
  translation: [2, [4, 3, 16, 16], 'translation', true, 'float32'],
  cutout: [3, [4, 3, 16, 16], 'cutout', true, 'float32'],
  all: [4, [5, 3, 12, 12], 'color,translation,cutout', true, 'float32'],
  'all, odd sizes': [5, [3, 1, 7, 9], 'color,translation,cutout', true, 'float32'],
  'cutout then color': [6, [2, 3, 10, 6], 'cutout,color', true, 'float32'],
  'all, channels last': [7, [3, 8, 8, 3], 'color,translation,cutout', false, 'float32'],
  'all, float64': [9, [2, 3, 8, 8], 'color,translation,cutout', true, 'float64'],
  'translation, 3x3 (no shift)': [8, [2, 2, 3, 3], 'translation', true, 'float32'],
};
// The native op called directly, on this thread and on the training thread (same reference script).
const NATIVE_CASE: [number, number[], string, boolean, 'float32'] = [10, [3, 2, 9, 11], 'translation,color,cutout', true, 'float32'];

const REFERENCE = `
import json, sys, torch
sys.path.insert(0, ${JSON.stringify(__dirname)})
from DiffAugment_pytorch import DiffAugment
torch.set_num_threads(1)
out = {}
for name, (seed, shape, policy, channels_first, dtype) in json.loads(input()).items():
    torch.manual_seed(seed)
    x = torch.randn(*shape, dtype=getattr(torch, dtype)).requires_grad_(True)
    y = DiffAugment(x, policy, channels_first)
    w = torch.randn(y.shape)
    (y * w).sum().backward()
    out[name] = {'y': y.tolist(), 'grad': x.grad.tolist(), 'next': torch.rand(3).tolist()}
print(json.dumps(out))
`;

type Nested = number | Nested[];

function relDiff(t: Tensor, ref: Nested): number {
  const r = torch.tensor(ref as number[], { dtype: 'float64' });
  expect(t.shape).toEqual(r.shape);
  const scale = r.abs().max().item() || 1;
  return t.double().sub(r).abs().max().item() / scale;
}
const close = (what: string, t: Tensor, ref: Nested) => expect({ what, ok: relDiff(t, ref) <= REL_TOL }).toEqual({ what, ok: true });

withTorch('diffAugment equals the authors’ DiffAugment_pytorch.py after the same seed (values and gradients)', () => {
  let ref: Record<string, { y: Nested; grad: Nested; next: number[] }>;
  beforeAll(() => {
    torch.setNumThreads(1);
    ref = JSON.parse(runPython(py!, ['-c', REFERENCE], { input: `${JSON.stringify({ ...CASES, native: NATIVE_CASE })}\n` }));
  });

  it.each(Object.keys(CASES))('%s', (name) => {
    const [seed, shape, policy, channelsFirst, dtype] = CASES[name];
    torch.scope(() => {
      torch.manualSeed(seed);
      const x = torch.randn(shape, { dtype }).requiresGrad_();
      const y = diffAugment(x, policy, { channelsFirst });
      const w = torch.randn(y.shape);
      y.mul(w).sum().backward();
      close(`${name}: y`, y, ref[name].y);
      close(`${name}: dy/dx`, x.grad!, ref[name].grad);
      expect(torch.rand([3]).tolist()).toEqual(ref[name].next);
      expect([y.shape, y.dtype]).toEqual([shape, dtype]);
    });
  });

  it.each([
    ['this thread', false],
    ['the training thread', true],
  ])('the native op on %s: its output and its gradient for a random upstream gradient are PyTorch’s', (_, onTrain) => {
    const [seed, shape, policy] = NATIVE_CASE;
    torch.scope(() => {
      torch.manualSeed(seed);
      const x = torch.randn(shape).requiresGrad_();
      const run = () => new Tensor(loadAddon().diffAugment(x._native, policy));
      const y = onTrain ? torch.onTrainingThread(run) : run();
      // recorded by autograd: y hangs off x's graph
      expect([y.requiresGrad, y.isLeaf]).toEqual([true, false]);
      const w = torch.randn(y.shape);
      const [dx] = grad(y, x, { gradOutputs: w });
      close('native: y', y, ref.native.y);
      close('native: dy/dx', dx, ref.native.grad);
      expect(dx.abs().sum().item()).toBeGreaterThan(0);
      expect(torch.rand([3]).tolist()).toEqual(ref.native.next);
    });
  });
});

describe('diffAugment', () => {
  it('changes what each policy changes: translation and cutout zero pixels, x is left as it was', () => {
    torch.scope(() => {
      torch.manualSeed(0);
      const x = torch.ones([8, 3, 16, 16]);
      // cutout zeroes a 8x8 square (clipped at the border) in every image, the same in every channel
      const cut = diffAugment(x, 'cutout');
      const zeros = cut.eq(0).sum([1, 2, 3]).tolist() as number[];
      for (const z of zeros) expect(z % 3).toBe(0);
      for (const z of zeros) expect(z).toBeGreaterThan(0);
      for (const z of zeros) expect(z).toBeLessThanOrEqual(3 * 64);
      // translation keeps the size and fills what moved in with zeros; 2 pixels at most each way
      const moved = diffAugment(x, 'translation');
      expect(moved.shape).toEqual([8, 3, 16, 16]);
      const zerosT = moved.eq(0).sum([1, 2, 3]).tolist() as number[];
      for (const z of zerosT) expect(z).toBeLessThanOrEqual(3 * (16 * 16 - 14 * 14));
      // x is left as it was
      expect(x.eq(1).sum().item()).toBe(8 * 3 * 16 * 16);
      // the empty policy is x itself (the authors return x unchanged)
      expect(diffAugment(x, '')).toBe(x);
      expect(DIFF_AUGMENT_POLICIES).toEqual(['color', 'translation', 'cutout']);
    });
  });

  it('refuses an unknown policy naming it and the known ones, before drawing anything', () => {
    torch.scope(() => {
      const x = torch.zeros([2, 3, 8, 8]);
      torch.manualSeed(3);
      const before = torch.getRngState();
      expect(() => diffAugment(x, 'color,translaton')).toThrow(
        new TypeError(
          'diffAugment: policy: unknown policy "translaton" (did you mean \'translation\'?) in "color,translaton"; known: color, translation, cutout',
        ),
      );
      expect(() => diffAugment(x, 'color,,cutout')).toThrow('diffAugment: policy: unknown policy "" in "color,,cutout"; known: color, translation, cutout');
      expect(() => diffAugment(x, 'blur')).toThrow('diffAugment: policy: unknown policy "blur" in "blur"; known: color, translation, cutout');
      expect(torch.getRngState().tolist()).toEqual(before.tolist());
      expect(() => diffAugment(x, 3 as never)).toThrow(
        new TypeError("diffAugment: policy: expected a comma-separated list of 'color', 'translation' or 'cutout', got 3"),
      );
    });
  });

  it('records no graph under noGrad; with grad on, gradients reach what x was computed from', () => {
    torch.scope(() => {
      const a = torch.randn([2, 3, 8, 8]).requiresGrad_();
      expect(torch.noGrad(() => diffAugment(a)).requiresGrad).toBe(false);
      const w = torch.randn([2, 3, 8, 8]);
      // the same draws twice: once on a.mul(3), once on a leaf holding its values; d/da is 3 d/dx
      torch.manualSeed(11);
      diffAugment(a.mul(3)).mul(w).sum().backward();
      torch.manualSeed(11);
      const x = a.detach().mul(3).requiresGrad_();
      diffAugment(x).mul(w).sum().backward();
      const scale = x.grad!.abs().max().item();
      expect(scale).toBeGreaterThan(0);
      expect(a.grad!.sub(x.grad!.mul(3)).abs().max().item()).toBeLessThanOrEqual(1e-6 * scale);
    });
  });

  it('the native op parses the policy itself (the fused step calls it from C++): the facade’s messages, before drawing anything', () => {
    const addon = loadAddon();
    torch.scope(() => {
      const x = torch.zeros([2, 3, 8, 8]);
      torch.manualSeed(3);
      const before = torch.getRngState();
      const message = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          return `${(e as Error).name}: ${(e as Error).message}`;
        }
        return 'no error';
      };
      expect(message(() => addon.diffAugment(x._native, 'color,translaton'))).toBe(
        'TypeError: diffAugment: policy: unknown policy "translaton" (did you mean \'translation\'?) in "color,translaton"; known: color, translation, cutout',
      );
      expect(message(() => addon.diffAugment(x._native, 'blur'))).toBe(
        'TypeError: diffAugment: policy: unknown policy "blur" in "blur"; known: color, translation, cutout',
      );
      // the same message as the facade's parse for every kind of unknown name
      for (const policy of ['color,,cutout', 'Color', ' cutout', 'cutout,', 'transl"ation\n', 'color,trans', 'xyz,color']) {
        expect(message(() => addon.diffAugment(x._native, policy))).toBe(message(() => parsePolicy(policy)));
      }
      expect(message(() => addon.diffAugment(x._native, 3 as never))).toBe('TypeError: diffAugment(policy): expected a string, got 3');
      expect(torch.getRngState().tolist()).toEqual(before.tolist());
      // its own checks of x, for C++ callers (the facade checks first)
      expect(message(() => addon.diffAugment(torch.zeros([3, 8, 8])._native, 'color'))).toBe(
        'Error: diffAugment: x must be a batch of images [N, C, H, W], got shape [3, 8, 8]',
      );
      expect(message(() => addon.diffAugment(torch.zeros([1, 1, 4, 4], { dtype: 'int64' })._native, 'color'))).toBe(
        'TypeError: diffAugment: x must be a floating-point tensor, got dtype int64',
      );
      // an empty policy is x itself
      expect(addon.diffAugment(x._native, '').sameAs(x._native)).toBe(true);
    });
  });

  it('refuses bad input naming the value', () => {
    torch.scope(() => {
      expect(() => diffAugment([1, 2] as never)).toThrow(new TypeError('diffAugment: x: expected a Tensor, got [1,2]'));
      expect(() => diffAugment(torch.zeros([3, 8, 8]))).toThrow(new RangeError('diffAugment: x must be a batch of images [N, C, H, W], got shape [3, 8, 8]'));
      expect(() => diffAugment(torch.zeros([1, 8, 8]), 'color', { channelsFirst: false })).toThrow(
        new RangeError('diffAugment: x must be a batch of images [N, H, W, C], got shape [1, 8, 8]'),
      );
      expect(() => diffAugment(torch.zeros([1, 1, 4, 4], { dtype: 'int64' }))).toThrow(
        new TypeError('diffAugment: x must be a floating-point tensor, got dtype int64'),
      );
      expect(() => diffAugment(torch.zeros([1, 1, 4, 4]), 'color', { channelFirst: true } as never)).toThrow(
        new TypeError('diffAugment: unknown option "channelFirst": did you mean channelsFirst? (options: channelsFirst)'),
      );
      expect(() => diffAugment(torch.zeros([1, 1, 4, 4]), 'color', { channelsFirst: 'yes' } as never)).toThrow(
        new TypeError('diffAugment: channelsFirst: expected a boolean, got "yes"'),
      );
      const x = torch.zeros([1, 1, 4, 4]);
      x.dispose();
      expect(() => diffAugment(x)).toThrow('diffAugment: x was disposed and cannot be used again');
    });
  });
});
