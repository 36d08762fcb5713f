/**
 * The fused step with convolutional and conditional models: shapes in, labels in, what it draws,
 * and every bad input as a clear error (never a native crash). PyTorch parity of the dcgan and cgan
 * presets is in test/parity.
 */
import { buildModels, makeOptimizer } from '../../ts/gan/build';
import { drawLabels, withOneHot } from '../../ts/gan/condition';
import { GanStep } from '../../ts/gan/gan-step';
import { imperativeStep } from '../../ts/gan/imperative-step';
import { presets, type PresetName } from '../../ts/gan/presets';
import { fromSpec } from '../../ts/nn/from-spec';
import { type ModuleSpec } from '../../ts/nn/spec';
import * as torch from '../../ts/tensor/torch';

function make(name: PresetName, seed = 1) {
  torch.manualSeed(seed);
  const p = presets[name];
  const { generator: G, discriminator: D } = buildModels(p);
  const optG = makeOptimizer(p.optimizer, G.parameters());
  const optD = makeOptimizer(p.optimizer, D.parameters());
  return { p, G, D, optG, optD, gan: new GanStep(G, D, optG, optD, p.step) };
}

const images = (n: number) => torch.rand([n, 1, 28, 28]).mul(2).sub(1);

describe('conditioning', () => {
  test('withOneHot appends one-hot planes in dimension 1 (features for MLPs, H x W planes for images)', () => {
    const y = torch.tensor([2, 0], { dtype: 'int64' });
    const flat = withOneHot(torch.zeros([2, 3]), y, 4);
    expect(flat.tolist()).toEqual([
      [0, 0, 0, 0, 0, 1, 0],
      [0, 0, 0, 1, 0, 0, 0],
    ]);
    const planes = withOneHot(torch.zeros([2, 1, 2, 2]), y, 4);
    expect(planes.shape).toEqual([2, 5, 2, 2]);
    expect(planes.sum([2, 3]).tolist()).toEqual([
      [0, 0, 0, 4, 0],
      [0, 4, 0, 0, 0],
    ]);
  });

  test('fake labels are torch.randint(0, classes, (n,)) from the global generator, after the noise, as in the fused step', () => {
    // the fused step with fed noise but drawn labels equals the facade step with labels drawn the same way
    const a = make('cgan', 3);
    const b = make('cgan', 3);
    const x = images(8);
    const labels = torch.randint(0, 10, [8]);
    const zD = a.gan.noise(8);
    const zG = a.gan.noise(8);
    torch.manualSeed(21);
    const fused = a.gan.step(x, { labels, zD, zG });
    torch.manualSeed(21);
    const facade = imperativeStep(b.G, b.D, b.optG, b.optD, b.p.step, x, { labels, zD, zG });
    // The fast path sums D's real and fake batches in one convolution (channels-last): equal to rounding.
    // Labels drawn in another order would give other losses entirely.
    for (const k of ['dLoss', 'gLoss', 'dReal', 'dFake'] as const) expect(Math.abs(fused[k] - facade[k]) / Math.abs(facade[k])).toBeLessThan(1e-5);
    torch.manualSeed(5);
    const drawn = drawLabels(10, 1000);
    torch.manualSeed(5);
    expect(a.gan.drawLabels(1000).tolist()).toEqual(drawn.tolist());
    const counts = new Array(10).fill(0);
    for (const v of drawn.tolist() as number[]) counts[v]++;
    expect(Math.min(...counts)).toBeGreaterThan(60); // uniform over the 10 classes
  });

  test('generate(z, labels): the label changes the image; G without labels is refused', () => {
    const { gan } = make('cgan');
    const z = gan.noise(2);
    const same = torch.cat([z.narrow(0, 0, 1), z.narrow(0, 0, 1)]);
    const out = gan.generate(same, torch.tensor([3, 7], { dtype: 'int64' }));
    expect(out.shape).toEqual([2, 1, 28, 28]);
    expect(
      out
        .narrow(0, 0, 1)
        .sub(out.narrow(0, 1, 1))
        .abs()
        .max()
        .item(),
    ).toBeGreaterThan(1e-3);
    expect(() => gan.generate(z)).toThrow('labels: this conditional GAN (10 classes) needs a label per image, got none');
  });

  test('trainEpoch slices the labels with the images (shuffled): equal to step() on the same batches', async () => {
    const n = 40;
    const data = torch.randint(0, 256, [n, 1, 28, 28], { dtype: 'uint8' });
    const labels = torch.randint(0, 10, [n], { dtype: 'uint8' });
    const a = make('cgan', 4);
    torch.manualSeed(8);
    const r = await a.gan.trainEpoch(data, { batchSize: 16, labels, shuffle: false, recordSteps: true });
    const b = make('cgan', 4);
    torch.manualSeed(8);
    const steps = [0, 16, 32].map((s) => {
      const len = Math.min(16, n - s);
      const x = data.narrow(0, s, len).float().div(255).sub(0.5).div(0.5);
      return b.gan.step(x, { labels: labels.narrow(0, s, len).long() });
    });
    expect(r.steps).toBe(3);
    steps.forEach((s, i) => {
      expect(r.perStep![i * 4]).toBe(Math.fround(s.dLoss));
    });
  });
});

describe('bad input is a clear error', () => {
  test('a 2-D batch into a conv D names the shapes and [N, C, H, W]', async () => {
    const { gan } = make('dcgan');
    expect(() => gan.step(torch.rand([8, 784]))).toThrow(
      'real batch: the convolutional discriminator expects images of shape [N, C, H, W] with C = 1, got shape [8, 784]',
    );
    await expect(gan.trainEpoch(torch.zeros([16, 784], { dtype: 'uint8' }), { batchSize: 8 })).rejects.toThrow(
      'trainEpoch: dataset must have shape [N, 1, H, W] or [N, H, W] for the convolutional discriminator, got [16, 784]',
    );
  });

  test('a kernel larger than the input names the layer, the kernel and the padded input', () => {
    const conv = (k: number): ModuleSpec => ({ type: 'Conv2d', inChannels: 1, outChannels: 1, kernelSize: k });
    const G = fromSpec({
      type: 'Sequential',
      children: [
        { type: 'Linear', inFeatures: 4, outFeatures: 16 },
        { type: 'Unflatten', dim: 1, unflattenedSize: [1, 4, 4] },
      ],
    });
    const D = fromSpec({ type: 'Sequential', children: [conv(7), { type: 'Flatten' }] });
    const spec = { ...presets.dcgan.step, noise: { dist: 'normal' as const, dim: 4 } };
    const gan = new GanStep(G, D, makeOptimizer(presets.dcgan.optimizer, G.parameters()), makeOptimizer(presets.dcgan.optimizer, D.parameters()), spec);
    expect(() => gan.step(torch.rand([2, 1, 4, 4]))).toThrow(
      'Conv2d discriminator.0: kernel 7x7 (dilation 1x1) is larger than the padded input 4x4 (input 4x4, padding 0x0)',
    );
  });

  test('labels: missing, given to an unconditional GAN, outside [0, classes), of the wrong shape or dtype', async () => {
    const c = make('cgan');
    const x = images(4);
    expect(() => c.gan.step(x)).toThrow('labels: this conditional GAN (10 classes) needs a label per image, got none');
    expect(() => c.gan.step(x, { labels: torch.tensor([1, 2, 12, 3], { dtype: 'int64' }) })).toThrow('labels: label 12 is outside [0, 10) (the 10 classes)');
    expect(() => c.gan.step(x, { labels: torch.tensor([1, -1, 2, 3], { dtype: 'int64' }) })).toThrow('labels: label -1 is outside [0, 10)');
    expect(() => c.gan.step(x, { labels: torch.tensor([1, 2], { dtype: 'int64' }) })).toThrow('labels: expected shape [4] (one label per image), got [2]');
    expect(() => c.gan.step(x, { labels: torch.rand([4]) })).toThrow('labels: expected integer class indices, got dtype Float');
    expect(() => c.gan.step(x, { labels: [1, 2, 3, 4] as never })).toThrow('step: labels: expected a Tensor, got [1,2,3,4]');
    const data = torch.zeros([8, 1, 28, 28], { dtype: 'uint8' });
    await expect(c.gan.trainEpoch(data, { batchSize: 4 })).rejects.toThrow(
      'trainEpoch: labels: this conditional GAN (10 classes) needs a label per image, got none',
    );
    const bad = torch.tensor([0, 1, 2, 3, 4, 5, 6, 10], { dtype: 'uint8' });
    await expect(c.gan.trainEpoch(data, { batchSize: 4, labels: bad })).rejects.toThrow('trainEpoch: labels: label 10 is outside [0, 10) (the 10 classes)');
    const d = make('dcgan');
    expect(() => d.gan.step(x, { labels: torch.zeros([4], { dtype: 'int64' }) })).toThrow(
      'labels: this GAN is not conditional (its step spec has no conditioning), so it takes no labels',
    );
    expect(() => d.gan.drawLabels(3)).toThrow('drawLabels: this GAN is not conditional');
  });

  test('a label error keeps its class (RangeError, TypeError) from step() and from trainEpoch, raised on the training thread', async () => {
    // One mapping of C++ exceptions to JS errors (native/errors.h) for the JS thread and for the promise
    // of an epoch, whose label check runs on the training thread: the class does not depend on the thread.
    // Native errors come from another realm than jest's: compare names, not classes.
    const kind = (e: unknown) => ({ name: (e as Error).name, message: (e as Error).message });
    const thrown = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return kind(e);
      }
      return undefined;
    };
    const c = make('cgan');
    const x = images(4);
    expect(thrown(() => c.gan.step(x, { labels: torch.tensor([1, 2, 12, 3], { dtype: 'int64' }) }))).toEqual({
      name: 'RangeError',
      message: 'labels: label 12 is outside [0, 10) (the 10 classes)',
    });
    expect(thrown(() => c.gan.step(x, { labels: torch.rand([4]) }))).toEqual({
      name: 'TypeError',
      message: 'labels: expected integer class indices, got dtype Float',
    });
    const data = torch.zeros([8, 1, 28, 28], { dtype: 'uint8' });
    const outside = c.gan.trainEpoch(data, { batchSize: 4, labels: torch.tensor([0, 1, 2, 3, 4, 5, 6, 10], { dtype: 'uint8' }) });
    expect(await outside.then(() => undefined, kind)).toEqual({
      name: 'RangeError',
      message: 'trainEpoch: labels: label 10 is outside [0, 10) (the 10 classes)',
    });
    const floats = c.gan.trainEpoch(data, { batchSize: 4, labels: torch.rand([8]) });
    expect(await floats.then(() => undefined, kind)).toEqual({
      name: 'TypeError',
      message: 'trainEpoch: labels: expected integer class indices, got dtype Float',
    });
    // The failed epochs released the step.
    expect(c.gan.busy).toBe(false);
  });

  test('noise of the wrong shape; a spec whose noise does not fit G', () => {
    const { gan, G, D, optG, optD, p } = make('dcgan');
    expect(() => gan.step(images(4), { zD: torch.randn([4, 100]) })).toThrow('noise: expected shape [4, 100, 1, 1], got [4, 100]');
    const flat = { ...p.step, noise: { dist: 'normal' as const, dim: 100 } };
    expect(() => new GanStep(G, D, optG, optD, flat)).toThrow(
      "GanStep: noise of shape [N, 100] has rank 2, the generator's first layer takes rank 4 ([N, C, H, W]: give the noise a shape such as [dim, 1, 1])",
    );
    const wide = { ...p.step, noise: { dist: 'normal' as const, dim: 64, shape: [64, 1, 1] } };
    expect(() => new GanStep(G, D, optG, optD, wide)).toThrow(
      'GanStep: noise of shape [N, 64, 1, 1] gives the generator 64 input features or channels, but its first layer takes 100',
    );
    const shape = { ...p.step, noise: { dist: 'normal' as const, dim: 100, shape: [10, 2, 2] } };
    expect(() => new GanStep(G, D, optG, optD, shape)).toThrow('GanStep: noise shape [10, 2, 2] does not hold 100 values (noise.dim)');
    const cond = { ...p.step, conditioning: { classes: 1 } };
    expect(() => new GanStep(G, D, optG, optD, cond)).toThrow('GanStep: spec.conditioning.classes must be an integer in [2, 2147483647], got 1');
  });

  test('an Embedding in a fused model names what conditions instead', () => {
    const { p, D } = make('dcgan');
    const G = fromSpec({ type: 'Sequential', children: [{ type: 'Embedding', numEmbeddings: 10, embeddingDim: 4 }] });
    expect(() => new GanStep(G, D, makeOptimizer(p.optimizer, G.parameters()), makeOptimizer(p.optimizer, D.parameters()), p.step)).toThrow(
      "the fused trainer cannot run module 0 of type Embedding; it supports Sequential trees of BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Flatten, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Unflatten (conditional GANs take labels through the step spec's conditioning instead)",
    );
  });
});
