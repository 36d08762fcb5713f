/**
 * A run config's recipe keys (issue 25): the step spec's recipes, given on top of the preset's step
 * (config.json keeps the effective preset, so a resumed run trains with them).
 *
 *   loss         'bceWithLogits' | 'bce' | 'leastSquares' | 'hinge' | 'wasserstein' (LOSSES)
 *   penalty      { type: 'wgan-gp' | 'r1', weight, every? } or null (none, also where the preset has one)
 *   dSteps       integer >= 1: D updates per G update
 *   ema          { decay in (0, 1), start? }: an EMA of G, which samples, evaluation and exports use
 *   augment      a DiffAugment policy ('color,translation,cutout'; '' for none): convolutional presets
 *   conditional  true: a convolutional preset made class-conditional (one-hot, as cgan)
 */
import { z } from 'zod';
import { isConvolutional, type Preset, withClasses } from '../gan/presets';
import { EmaSpecSchema, GanStepSpecSchema, LOSSES, type LossName, PenaltySpecSchema } from '../gan/step-spec';
import { expected, intAtLeast, oneOf } from '../util/schema';
import { type ConfigIssue, describeValue } from './errors';

/** The recipe keys' schemas (RunConfigSchema's shape includes them). */
export const RECIPE_FIELDS = {
  loss: oneOf(Object.keys(LOSSES) as [LossName, ...LossName[]]).optional(),
  penalty: PenaltySpecSchema.nullable().optional(),
  dSteps: intAtLeast(1).optional(),
  ema: EmaSpecSchema.optional(),
  augment: z.string(expected('a DiffAugment policy string')).optional(),
  conditional: z.boolean(expected('true or false')).optional(),
};

export interface RecipeConfig {
  loss?: LossName;
  penalty?: z.output<typeof PenaltySpecSchema> | null;
  dSteps?: number;
  ema?: z.output<typeof EmaSpecSchema>;
  augment?: string;
  conditional?: boolean;
}

/** MNIST's and Fashion-MNIST's classes: what `conditional` starts from (a folder's replace them when loaded). */
const DEFAULT_CLASSES = 10;

/** `preset` with the config's recipes applied; each problem is pushed onto `issues` (naming the key). */
export function applyRecipes(preset: Preset, c: RecipeConfig, issues: ConfigIssue[]): Preset {
  let out = preset;
  if (c.conditional === true && !out.step.conditioning) {
    try {
      out = withClasses(out, DEFAULT_CLASSES);
    } catch (e) {
      issues.push({ path: ['conditional'], message: `config.conditional: preset ${preset.name} ${(e as Error).message.replace(/^preset \S+ /, '')}` });
    }
  } else if (c.conditional === false && out.step.conditioning) {
    issues.push({
      path: ['conditional'],
      message: `config.conditional: preset ${preset.name} is conditional; for an unconditional GAN choose dcgan, sngan or wgan-gp`,
    });
  }
  const step = out.step;
  if (c.loss !== undefined) {
    if (!LOSSES[c.loss].labels && (step.realLabel !== 1 || step.fakeLabel !== 0))
      issues.push({
        path: ['loss'],
        message: `config.loss: '${c.loss}' takes no labels, but preset ${preset.name} trains D toward real ${step.realLabel} and fake ${step.fakeLabel}; choose a preset without label smoothing`,
      });
    step.loss = c.loss;
  }
  if (c.penalty === null) delete step.penalty;
  else if (c.penalty !== undefined) step.penalty = c.penalty;
  if (c.dSteps !== undefined) step.dSteps = c.dSteps;
  if (c.ema !== undefined) step.ema = c.ema;
  if (c.augment === '') delete step.augment;
  else if (c.augment !== undefined) {
    if (!isConvolutional(out))
      issues.push({
        path: ['augment'],
        message: `config.augment: DiffAugment needs a convolutional discriminator; preset ${preset.name}'s reads flat vectors`,
      });
    step.augment = c.augment;
  }
  const checked = GanStepSpecSchema.safeParse(step);
  if (!checked.success)
    for (const i of checked.error.issues) {
      const key = String(i.path[0] ?? 'loss');
      const value = i.path.reduce<unknown>((v, k) => (v as Record<string | number, unknown>)?.[k as string], step);
      issues.push({ path: [key], message: `config.${i.path.join('.')}: ${i.message}${i.code === 'custom' ? '' : `, got ${describeValue(value)}`}` });
    }
  return out;
}
