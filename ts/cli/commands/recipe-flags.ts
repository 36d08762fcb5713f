/** `train`'s recipe flags (--loss, --penalty, --d-steps, --ema, --augment, --conditional) to RecipeConfig keys. */
import { type RecipeConfig } from '../../config/recipes';
import { LOSSES, type LossName, PENALTIES, type PenaltyName } from '../../gan/step-spec';
import { choiceFlag, intFlag, UsageError } from './common';

const NAME = 'train';

/** The penalties' default weights: Gulrajani et al.'s lambda = 10 and Mescheder et al.'s gamma = 10. */
export const DEFAULT_PENALTY_WEIGHT: Record<PenaltyName, number> = { 'wgan-gp': 10, r1: 10 };

export const RECIPE_OPTIONS = {
  loss: { type: 'string' },
  penalty: { type: 'string' },
  'd-steps': { type: 'string' },
  ema: { type: 'string' },
  augment: { type: 'string' },
  conditional: { type: 'boolean' },
} as const;

/** Config keys and the flags that set them. */
export const RECIPE_FLAG_OF: Record<string, string> = {
  loss: '--loss',
  penalty: '--penalty',
  dSteps: '--d-steps',
  ema: '--ema',
  augment: '--augment',
  conditional: '--conditional',
};

const NUMBER = /^(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/** 'wgan-gp', 'r1:10', 'r1:10:16' (type, weight, every) or 'none'. */
function penaltyFlag(value: string | boolean | undefined): RecipeConfig['penalty'] {
  if (value === undefined) return undefined;
  const s = String(value).trim();
  if (s === 'none') return null;
  const [type, weight, every, ...rest] = s.split(':');
  const form = `TYPE[:WEIGHT[:EVERY]] with TYPE ${PENALTIES.join(' or ')} (or none), e.g. r1:10:16`;
  if (!(PENALTIES as readonly string[]).includes(type) || rest.length) throw new UsageError(`--penalty: expected ${form}, got ${JSON.stringify(s)}`, NAME);
  const w = weight === undefined ? DEFAULT_PENALTY_WEIGHT[type as PenaltyName] : NUMBER.test(weight) ? Number(weight) : Number.NaN;
  if (!(w > 0) || !Number.isFinite(w))
    throw new UsageError(`--penalty: the weight must be a number > 0, got ${JSON.stringify(weight)} in ${JSON.stringify(s)}`, NAME);
  const e = every === undefined ? undefined : /^\d+$/.test(every) ? Number(every) : Number.NaN;
  if (e !== undefined && !(Number.isSafeInteger(e) && e >= 1))
    throw new UsageError(`--penalty: EVERY must be an integer >= 1, got ${JSON.stringify(every)} in ${JSON.stringify(s)}`, NAME);
  return { type: type as PenaltyName, weight: w, ...(e !== undefined ? { every: e } : {}) };
}

/** 'DECAY' or 'DECAY:START', decay in (0, 1). */
function emaFlag(value: string | boolean | undefined): RecipeConfig['ema'] {
  if (value === undefined) return undefined;
  const s = String(value).trim();
  const [decay, start, ...rest] = s.split(':');
  const d = NUMBER.test(decay) ? Number(decay) : Number.NaN;
  if (!(d > 0 && d < 1) || rest.length)
    throw new UsageError(`--ema: expected DECAY[:START] with DECAY in (0, 1), e.g. 0.999 or 0.999:1000, got ${JSON.stringify(s)}`, NAME);
  const st = start === undefined ? undefined : /^\d+$/.test(start) ? Number(start) : Number.NaN;
  if (st !== undefined && !Number.isSafeInteger(st))
    throw new UsageError(`--ema: START must be an integer >= 0 (G updates), got ${JSON.stringify(start)}`, NAME);
  return { decay: d, ...(st !== undefined ? { start: st } : {}) };
}

type Values = { [K in keyof typeof RECIPE_OPTIONS]?: string | boolean };

/** The recipe keys the flags set (absent flags leave theirs unset). */
export function recipeFlags(v: Values): RecipeConfig {
  const out: RecipeConfig = {
    loss: choiceFlag<LossName>(NAME, 'loss', v.loss, Object.keys(LOSSES) as LossName[]),
    penalty: penaltyFlag(v.penalty),
    dSteps: intFlag(NAME, 'd-steps', v['d-steps'], 1),
    ema: emaFlag(v.ema),
    augment: v.augment === undefined ? undefined : String(v.augment).trim() === 'none' ? '' : String(v.augment).trim(),
    conditional: v.conditional === true ? true : undefined,
  };
  return Object.fromEntries(Object.entries(out).filter(([, x]) => x !== undefined)) as RecipeConfig;
}
