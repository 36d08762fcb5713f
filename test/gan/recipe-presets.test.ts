/**
 * The recipes' presets (issue 25 item 3): sngan (Miyato et al.'s standard CNN, spectral norm on D, hinge)
 * and wgan-gp (Gulrajani et al.: critic without BatchNorm, penalty 10, five D steps), at every image size
 * dcgan supports, conditional where asked; trained from the CLI on MNIST, Fashion-MNIST and a folder.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { DEBIAN_FASHION_MNIST_DIR } from '../../ts/data/catalog';
import { buildModels } from '../../ts/gan/build';
import { adaptPreset, getPreset, namedLayers, type Preset, withClasses } from '../../ts/gan/presets';
import * as torch from '../../ts/tensor/torch';
import { runCli } from '../helpers/lib';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-recipe-presets-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** G's output and D's for two samples of `p` (its noise, its labels). */
function shapes(p: Preset): { g: number[]; d: number[] } {
  return torch.scope(() => {
    torch.manualSeed(0);
    const { generator: G, discriminator: D } = buildModels(p);
    const classes = p.step.conditioning?.classes ?? 0;
    const z = torch.randn([2, ...(p.step.noise.shape ?? [p.step.noise.dim])]);
    const oneHot = (x: ReturnType<typeof torch.randn>) => {
      if (!classes) return x;
      const planes = torch.zeros([2, classes, ...x.shape.slice(2)]);
      return torch.cat([x, planes], 1);
    };
    const x = G.forward(oneHot(z));
    return { g: x.shape, d: D.forward(oneHot(x)).shape };
  });
}

describe('sngan', () => {
  const p = getPreset('sngan');
  test("the paper's standard CNN: every D layer spectral-normed, LeakyReLU 0.1, hinge loss, Adam 2e-4 (0.5, 0.999)", () => {
    const d = namedLayers(p.discriminator);
    const weighted = d.filter((l) => l.spec.type === 'Conv2d' || l.spec.type === 'Linear');
    expect(weighted.map((l) => l.spec.type)).toEqual(['Conv2d', 'Conv2d', 'Conv2d', 'Conv2d', 'Conv2d', 'Linear']);
    expect(weighted.every((l) => (l.spec as { spectralNorm?: boolean }).spectralNorm === true)).toBe(true);
    expect(d.filter((l) => l.spec.type === 'LeakyReLU').map((l) => (l.spec as { negativeSlope: number }).negativeSlope)).toEqual([0.1, 0.1, 0.1, 0.1, 0.1]);
    expect(p.step).toMatchObject({ loss: 'hinge', realLabel: 1, fakeLabel: 0, gNoise: 'fresh', noise: { dist: 'normal', dim: 128 } });
    expect(p.optimizer).toMatchObject({ type: 'adam', lr: 2e-4, betas: [0.5, 0.999] });
    const { discriminator: D } = buildModels(p);
    expect(Object.keys(D.stateDict())).toContain('0.parametrizations.weight.original');
    expect(Object.keys(D.stateDict())).toContain('11.parametrizations.weight.0._u');
  });
  test.each([
    [1, 28],
    [1, 32],
    [3, 32],
    [3, 64],
  ])('%i channel(s), %i pixels: G draws the images D reads', (channels, size) => {
    expect(shapes(adaptPreset(p, { channels, size }))).toEqual({ g: [2, channels, size, size], d: [2, 1] });
  });
});

describe('wgan-gp', () => {
  const p = getPreset('wgan-gp');
  test("Gulrajani et al.'s recipe on the dcgan networks: a critic without BatchNorm, penalty 10, 5 D steps, Adam 1e-4 (0.5, 0.9)", () => {
    expect(namedLayers(p.discriminator).some((l) => l.spec.type.startsWith('BatchNorm'))).toBe(false);
    expect(p.generator).toEqual(getPreset('dcgan').generator);
    expect(p.step).toMatchObject({ loss: 'wasserstein', penalty: { type: 'wgan-gp', weight: 10 }, dSteps: 5 });
    expect(p.optimizer).toMatchObject({ type: 'adam', lr: 1e-4, betas: [0.5, 0.9] });
  });
  test.each([
    [1, 28],
    [3, 32],
    [3, 64],
  ])('%i channel(s), %i pixels: G draws the images D reads', (channels, size) => {
    expect(shapes(adaptPreset(p, { channels, size }))).toEqual({ g: [2, channels, size, size], d: [2, 1] });
  });
});

test('conditional: the one-hot width on G and D, the recipe kept', () => {
  for (const name of ['sngan', 'wgan-gp'] as const) {
    const base = getPreset(name);
    const c = withClasses(base, 10);
    const first = (s: Preset['generator']) =>
      namedLayers(s).find((l) => ['Linear', 'Conv2d', 'ConvTranspose2d'].includes(l.spec.type))!.spec as unknown as Record<string, number>;
    const g0 = first(base.generator);
    expect(first(c.generator).inFeatures ?? first(c.generator).inChannels).toBe((g0.inFeatures ?? g0.inChannels) + 10);
    expect(first(c.discriminator).inChannels).toBe(first(base.discriminator).inChannels + 10);
    expect(c.step).toEqual({ ...base.step, conditioning: { classes: 10 } });
    expect(shapes(c)).toEqual({ g: [2, 1, 28, 28], d: [2, 1] });
  }
  expect(() => withClasses(getPreset('vanilla'), 10)).toThrow(/preset vanilla is not convolutional and cannot be made conditional/);
});

describe('from the CLI', () => {
  const train = (args: string[]) =>
    runCli([
      'train',
      '--epochs',
      '1',
      '--seed',
      '3',
      '--batch-size',
      '16',
      '--sample-every',
      '1',
      '--save-every',
      '1',
      '--save-dir',
      path.join(root, 'runs'),
      ...args,
    ]);

  test('sngan on MNIST with an EMA and DiffAugment: the start table names the recipes; sample uses the EMA', () => {
    const r = train(['--preset', 'sngan', '--limit', '32', '--ema', '0.99', '--augment', 'translation']);
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.not.stringMatching(/error|warning/i) });
    expect(r.stdout).toMatch(/Recipes +hinge loss; EMA of G, decay 0\.99 \(samples, eval and exports use it\); DiffAugment translation \[autograd: .*\]/);
    const run = /Run folder +(\S+)/.exec(r.stdout)![1];
    expect(fs.existsSync(path.join(run, 'generator_ema.safetensors'))).toBe(true);
    const s = runCli(['sample', run, '--count', '4', '--seed', '1', '--out', path.join(root, 's.png')]);
    expect(s.status).toBe(0);
    expect(s.stdout).toMatch(/Wrote 4 samples from the EMA generator \(seed 1\)/);
    expect(PNG.sync.read(fs.readFileSync(path.join(root, 's.png'))).width).toBeGreaterThan(28);
  });

  const fashion = fs.existsSync(path.join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
  (fashion ? test : test.skip)('sngan and wgan-gp on Fashion-MNIST', () => {
    for (const preset of ['sngan', 'wgan-gp']) {
      const r = train(['--preset', preset, '--data', 'fashion-mnist', '--limit', '32']);
      expect({ preset, status: r.status, stderr: r.stderr }).toEqual({ preset, status: 0, stderr: expect.not.stringMatching(/error|warning/i) });
    }
  });

  test('wgan-gp and sngan, conditional, on a folder of 32-pixel RGB images in two classes', () => {
    const dir = path.join(root, 'images');
    for (const [cls, rgb] of [
      ['red', [220, 30, 30]],
      ['blue', [30, 30, 220]],
    ] as const) {
      for (let i = 0; i < 16; i++) {
        const png = new PNG({ width: 32, height: 32 });
        for (let k = 0; k < 32 * 32; k++) png.data.set([rgb[0], rgb[1], (rgb[2] + i * 2) & 255, 255], k * 4);
        fs.mkdirSync(path.join(dir, cls), { recursive: true });
        fs.writeFileSync(path.join(dir, cls, `${i}.png`), PNG.sync.write(png));
      }
    }
    for (const preset of ['wgan-gp', 'sngan']) {
      const r = train(['--preset', preset, '--conditional', '--data', dir, '--image-size', '32']);
      expect({ preset, status: r.status, stderr: r.stderr }).toEqual({ preset, status: 0, stderr: expect.not.stringMatching(/error|warning/i) });
      const run = /Run folder +(\S+)/.exec(r.stdout)![1];
      const cfg = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
      expect(cfg.config.preset.step.conditioning).toEqual({ classes: 2 });
      expect(cfg.config.preset.image).toEqual({ channels: 3, size: 32 });
    }
  });
});
