/**
 * Bad recipe input (issue 25 item 6): each a clear error naming the value and what was expected, from
 * every door: the fused GanStep (its native reader), the step-spec schema (config.json, presets), the
 * run config and the CLI's flags; and the paths the recipes take.
 */
import { parseTrainArgs } from '../../ts/cli/commands/train-args';
import { ConfigError, parseConfig, resolveConfig } from '../../ts/config/config';
import { GanStep } from '../../ts/gan/gan-step';
import { getPreset, presets } from '../../ts/gan/presets';
import { GanStepSpecSchema, type GanStepSpec } from '../../ts/gan/step-spec';
import { fromSpec } from '../../ts/nn/from-spec';
import { Adam } from '../../ts/optim/optimizer';
import * as torch from '../../ts/tensor/torch';

const cpu = { device: 'cpu' } as const;
const env = { available: false, reason: 'no GPU here' } as never;

function gan(base: 'udacity' | 'dcgan', step: Record<string, unknown>, fastPath?: boolean): GanStep {
  torch.manualSeed(1);
  const p = presets[base];
  const G = fromSpec(p.generator);
  const D = fromSpec(p.discriminator);
  return new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), { ...p.step, ...step } as GanStepSpec, { fastPath });
}

describe('the fused GanStep refuses bad recipes, naming the value', () => {
  test.each([
    [{ loss: 'hinje' }, /GanStep: spec\.loss: expected one of 'bceWithLogits', 'bce', 'leastSquares', 'hinge', 'wasserstein', got 'hinje'/],
    [{ penalty: { type: 'gp', weight: 10 } }, /spec\.penalty\.type: expected one of 'wgan-gp', 'r1', got 'gp'/],
    [{ penalty: { type: 'r1', weight: 0 } }, /spec\.penalty\.weight must be a number > 0, got 0/],
    [{ penalty: { type: 'r1', weight: 1, every: 0 } }, /spec\.penalty\.every must be a positive integer, got 0/],
    [{ dSteps: 0 }, /spec\.dSteps must be a positive integer, got 0/],
    [{ ema: { decay: 1 } }, /spec\.ema\.decay must be in \(0, 1\), got 1/],
    [{ ema: { decay: -0.5 } }, /spec\.ema\.decay must be in \(0, 1\), got -0\.5/],
    [{ loss: 'hinge' }, /loss 'hinge' takes no labels: realLabel must be 1 and fakeLabel 0, got 0\.9 and 0/],
  ])('%j', (step, message) => {
    expect(() => gan('udacity', step)).toThrow(message);
  });

  test('an unknown DiffAugment policy is named, with the nearest one', () => {
    expect(() => gan('dcgan', { augment: 'color,translaton' })).toThrow(
      'GanStep: spec.augment: unknown policy "translaton" (did you mean \'translation\'?) in "color,translaton"; known: color, translation, cutout',
    );
  });

  test('DiffAugment on an MLP discriminator says it needs images', () => {
    expect(() => gan('udacity', { augment: 'color' })).toThrow(/augment 'color' needs a discriminator that takes images \[N, C, H, W\]/);
  });

  test('every recipe runs on the autograd path, which says why', () => {
    const why = (step: Record<string, unknown>) => gan('udacity', { realLabel: 1, ...step }, true).path;
    expect(gan('udacity', {}, true).path).toBe('fast');
    expect(why({ loss: 'hinge' })).toBe("autograd: the fast path writes out only the BCE losses' gradients, not this step's loss");
    expect(why({ penalty: { type: 'r1', weight: 1 } })).toBe('autograd: a gradient penalty needs double backward (autograd)');
    expect(why({ dSteps: 2 })).toBe('autograd: dSteps > 1 (the fast path runs one D update per G update)');
    expect(why({ ema: { decay: 0.9 } })).toBe('autograd: the EMA of G is updated on the autograd path');
  });

  test('generate({ ema: true }) without an EMA is refused', () => {
    const g = gan('udacity', {});
    expect(g.emaGenerator).toBeNull();
    expect(() => g.generate(torch.randn([2, 100]), undefined, { ema: true })).toThrow('generate: this GAN keeps no EMA generator (its step spec has no ema)');
  });
});

describe('the step-spec schema (config.json, presets) and the run config', () => {
  const spec = (step: Record<string, unknown>) => GanStepSpecSchema.safeParse({ ...presets.dcgan.step, ...step });
  test('accepts the recipes and refuses bad ones with the expected form', () => {
    expect(
      spec({ loss: 'hinge', penalty: { type: 'r1', weight: 10, every: 16 }, dSteps: 2, ema: { decay: 0.999, start: 100 }, augment: 'color,cutout' }).success,
    ).toBe(true);
    const bad = spec({ ema: { decay: 1.5 }, augment: 'colour' });
    expect(bad.success).toBe(false);
    const messages = bad.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(messages).toEqual([
      'ema.decay: a number in (0, 1)',
      'augment: unknown policy "colour" (did you mean \'color\'?) in "colour"; known: color, translation, cutout',
    ]);
  });

  test('config keys override the preset step; bad ones name the key and value', () => {
    const r = resolveConfig(
      { preset: 'dcgan', loss: 'hinge', penalty: { type: 'r1', weight: 5 }, dSteps: 2, ema: { decay: 0.99 }, augment: 'translation' },
      env,
    );
    expect(r.preset.step).toMatchObject({ loss: 'hinge', penalty: { type: 'r1', weight: 5 }, dSteps: 2, ema: { decay: 0.99 }, augment: 'translation' });
    expect(resolveConfig({ preset: 'wgan-gp', penalty: null }, env).preset.step.penalty).toBeUndefined();
    const err = (c: object) => {
      try {
        resolveConfig(c as never, env);
      } catch (e) {
        expect(e).toBeInstanceOf(ConfigError);
        return (e as Error).message;
      }
      throw new Error('no error');
    };
    expect(err({ preset: 'udacity', loss: 'wasserstein' })).toMatch(
      /config\.loss: 'wasserstein' takes no labels, but preset udacity trains D toward real 0\.9/,
    );
    expect(err({ preset: 'vanilla', augment: 'color' })).toMatch(
      /config\.augment: DiffAugment needs a convolutional discriminator; preset vanilla's reads flat vectors/,
    );
    expect(err({ preset: 'dcgan', augment: 'zoom' })).toMatch(/config\.augment: unknown policy "zoom"/);
    expect(err({ preset: 'vanilla', conditional: true })).toMatch(/config\.conditional: preset vanilla is not convolutional and cannot be made conditional/);
    expect(err({ preset: 'cgan', conditional: false })).toMatch(/config\.conditional: preset cgan is conditional/);
    expect(() => parseConfig({ ema: { decay: 1 } })).toThrow(/config\.ema\.decay: expected a number in \(0, 1\), got 1/);
    expect(() => parseConfig({ loss: 'hinje' })).toThrow(
      /config\.loss: expected "bceWithLogits", "bce", "leastSquares", "hinge" or "wasserstein", got "hinje"/,
    );
  });

  test('conditional: true makes a convolutional preset class-conditional as cgan is dcgan', () => {
    const r = resolveConfig({ preset: 'dcgan', conditional: true }, env);
    expect(r.preset.step.conditioning).toEqual({ classes: 10 });
    expect(r.preset.generator).toEqual(getPreset('cgan').generator);
    expect(r.preset.discriminator).toEqual(getPreset('cgan').discriminator);
    const s = resolveConfig({ preset: 'sngan', conditional: true }, env).preset;
    expect(s.step.conditioning).toEqual({ classes: 10 });
    expect(s.name).toBe('sngan');
  });
});

describe('the CLI flags', () => {
  test('set the recipe keys', () => {
    const a = parseTrainArgs([
      '--preset',
      'dcgan',
      '--loss',
      'hinge',
      '--penalty',
      'r1:10:16',
      '--d-steps',
      '2',
      '--ema',
      '0.999:100',
      '--augment',
      'color,translation',
      '--conditional',
    ]);
    expect(a === 'help' ? null : a.config).toMatchObject({
      loss: 'hinge',
      penalty: { type: 'r1', weight: 10, every: 16 },
      dSteps: 2,
      ema: { decay: 0.999, start: 100 },
      augment: 'color,translation',
      conditional: true,
    });
    const b = parseTrainArgs(['--penalty', 'wgan-gp', '--ema', '0.99', '--augment', 'none']);
    expect(b === 'help' ? null : b.config).toMatchObject({ penalty: { type: 'wgan-gp', weight: 10 }, ema: { decay: 0.99 }, augment: '' });
    const c = parseTrainArgs(['--penalty', 'none']);
    expect(c === 'help' ? null : c.config.penalty).toBeNull();
  });

  test.each([
    [['--penalty', 'gp'], /--penalty: expected TYPE\[:WEIGHT\[:EVERY\]\] with TYPE wgan-gp or r1 \(or none\), e\.g\. r1:10:16, got "gp"/],
    [['--penalty', 'r1:-1'], /--penalty: the weight must be a number > 0, got "-1" in "r1:-1"/],
    [['--penalty', 'r1:10:0'], /--penalty: EVERY must be an integer >= 1, got "0" in "r1:10:0"/],
    [['--ema', '1'], /--ema: expected DECAY\[:START\] with DECAY in \(0, 1\), e\.g\. 0\.999 or 0\.999:1000, got "1"/],
    [['--ema', '0.9:x'], /--ema: START must be an integer >= 0 \(G updates\), got "x"/],
    [['--d-steps', '0'], /--d-steps/],
    [['--loss', 'hing'], /--loss: .*hing/],
  ])('%j is a usage error naming the value', (args, message) => {
    expect(() => parseTrainArgs(args)).toThrow(message);
  });
});

test('the penalty and EMA reach a fused step built from config (cpu)', () => {
  const p = resolveConfig({ preset: 'wgan-gp', ema: { decay: 0.5 } }, env).preset;
  torch.manualSeed(2);
  const G = fromSpec(p.generator, cpu);
  const D = fromSpec(p.discriminator, cpu);
  const g = new GanStep(G, D, new Adam(G.parameters()), new Adam(D.parameters()), p.step);
  const r = g.step(torch.rand([4, 1, 28, 28]).mul(2).sub(1));
  expect(Number.isFinite(r.dLoss) && Number.isFinite(r.gLoss)).toBe(true);
  expect(g.emaUpdates).toBe(1);
  expect(g.emaGenerator).not.toBeNull();
  expect(g.path).toBe("autograd: the fast path writes out only the BCE losses' gradients, not this step's loss");
});
