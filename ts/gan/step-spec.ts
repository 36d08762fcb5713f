/**
 * The one declaration of a GAN training step's variant (GanStepSpec): a zod schema from which come the
 * public types, the check of stored presets (store/schema.ts, config.json) and the facade's losses.
 * The fused native step takes the same object: its reader (native/, GanSpec) reads these same field
 * names and checks each one. The schema lives here on gan/, not on native/, so that each loss's facade
 * arithmetic sits beside its name (LOSSES); native/addon.ts, which may import from no other floor,
 * types the spec loosely and leaves the checking to that reader.
 *
 * A new loss (or any new step variant) touches these four places:
 *   ts/gan/step-spec.ts       its name and facade arithmetic in LOSSES (the schema, the TS types, the
 *                             config.json check and imperativeStep follow)
 *   native/gan_spec.h + _js.cc  GanSpec's enum value and the name ganSpecFromJs maps to it (a line each)
 *   native/gan_core.cc        the loss on the fused step (fast_path.cc: its gradient, or the fast path refuses it)
 *   test/parity/reference.py  the step as PyTorch writes it; regenerate test/parity/fixtures (regenerate.sh)
 */
import { z } from 'zod';
import * as F from '../nn/functional';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { parsePolicy } from './recipes/diff-augment';
import { bool, expected, intAtLeast, type KnownFields, num, obj, oneOf } from '../util/schema';

/**
 * The losses D and G train with, by spec name: `real(out, label)` and `fake(out, label)` D's terms on its
 * outputs for real and fake batches, `g(out)` G's on D's output for its fakes, `prob(out)` what the step
 * reports as dReal and dFake (the mean probability D gives "real"; for the losses without probabilities
 * D's mean output), `torchName` the torch.nn loss a script would use, `labels` whether realLabel and
 * fakeLabel mean anything (hinge and Wasserstein take none: the spec must keep 1 and 0).
 */
interface GanLoss {
  torchName: string;
  labels: boolean;
  real(out: Tensor, label: number): Tensor;
  fake(out: Tensor, label: number): Tensor;
  g(out: Tensor): Tensor;
  prob(out: Tensor): Tensor;
}

/** A loss against a constant target (BCE, MSE): D's terms against realLabel and fakeLabel, G's against 1. */
function labelled(torchName: string, f: (out: Tensor, target: Tensor) => Tensor, prob: (out: Tensor) => Tensor): GanLoss {
  const term = (out: Tensor, label: number) => f(out, torch.fullLike(out, label));
  return { torchName, labels: true, real: term, fake: term, g: (out) => term(out, 1), prob };
}
const meanOut = (out: Tensor) => out.mean();

export const LOSSES = {
  /** D outputs logits. */
  bceWithLogits: labelled('BCEWithLogitsLoss', F.binaryCrossEntropyWithLogits, (out) => out.sigmoid().mean()),
  /** D ends in Sigmoid: its output is already a probability. */
  bce: labelled('BCELoss', F.binaryCrossEntropy, meanOut),
  /** LSGAN (Mao et al.): MSE against the labels, as eriklindernoren's lsgan.py with dLossReduction 'mean'. */
  leastSquares: labelled('MSELoss', F.mseLoss, meanOut),
  /** SNGAN's and BigGAN's: relu(1 - D(x)) + relu(1 + D(G(z))) for D, -D(G(z)) for G (ganLosses.hingeD/G). */
  hinge: {
    torchName: 'hinge loss',
    labels: false,
    real: (out) => out.neg().add(1).relu().mean(),
    fake: (out) => out.add(1).relu().mean(),
    g: (out) => out.mean().neg(),
    prob: meanOut,
  },
  /** WGAN's critic: D(G(z)) - D(x) for D, -D(G(z)) for G (ganLosses.wassersteinD/G). */
  wasserstein: {
    torchName: 'Wasserstein loss',
    labels: false,
    real: (out) => out.mean().neg(),
    fake: (out) => out.mean(),
    g: (out) => out.mean().neg(),
    prob: meanOut,
  },
} as const satisfies Record<string, GanLoss>;
export type LossName = keyof typeof LOSSES;

/** The gradient penalties a step may add to D's loss. */
export const PENALTIES = ['wgan-gp', 'r1'] as const;
export type PenaltyName = (typeof PENALTIES)[number];

export const NoiseSpecSchema = obj(
  {
    /** 'uniform' draws from [low, high) (torch.rand * (high - low) + low); 'normal' is torch.randn. */
    dist: oneOf(['uniform', 'normal']),
    dim: intAtLeast(1),
    /** default -1 */
    low: num().optional(),
    /** default 1 */
    high: num().optional(),
    /**
     * One sample's shape (product = dim); default [dim]. A convolutional generator takes [dim, 1, 1],
     * as pytorch/examples' DCGAN draws torch.randn(N, nz, 1, 1).
     */
    shape: z.array(intAtLeast(1), expected('an array of integers >= 1')).optional(),
  },
  'a noise spec { dist, dim, low?, high?, shape? }',
);

/**
 * A class-conditional GAN: the label's one-hot vector is concatenated to G's noise and to D's input
 * in dimension 1 (for images, as `classes` constant planes of H x W), as in the common PyTorch cGAN and
 * conditional DCGAN scripts. Parameter-free conditioning keeps G and D plain Sequentials whose
 * state_dict keys are PyTorch's, and a one-hot vector fed to the first Linear or convolution is exactly
 * a learned label embedding added to that layer's output. Real batches carry their dataset labels;
 * G's labels for fakes are drawn uniformly from [0, classes) (after the noise, from the same generator).
 */
export const ConditioningSpecSchema = obj({ classes: intAtLeast(2) }, 'a conditioning spec { classes }');

/**
 * A gradient penalty on D (added to D's loss, reported in dLoss): 'wgan-gp' (Gulrajani et al., on
 * interpolates of real and fake, target norm 1; weight lambda, 10 in the paper) or 'r1' (Mescheder et al.,
 * on reals; weight gamma, applied as gamma / 2 as StyleGAN2). `every` > 1 makes it lazy, as StyleGAN2
 * applies R1: on D updates whose batch index is a multiple of `every`, scaled by `every`.
 */
export const PenaltySpecSchema = obj(
  {
    type: oneOf(PENALTIES),
    weight: z.number(expected('a number > 0')).positive(expected('a number > 0')),
    /** default 1 */
    every: intAtLeast(1).optional(),
  },
  "a penalty spec { type: 'wgan-gp' | 'r1', weight, every? }",
);

/**
 * An exponential moving average of G's weights, kept beside G and used for samples, evaluation and
 * exports: after each G update ema = decay * ema + (1 - decay) * G on parameters (torch.optim.swa_utils'
 * get_ema_multi_avg_fn), buffers copied from G (stylegan2-ada's G_ema); during the first `start` G updates
 * (default 0) the average is a copy of G.
 */
export const EmaSpecSchema = obj(
  {
    decay: z.number(expected('a number in (0, 1)')).gt(0, expected('a number in (0, 1)')).lt(1, expected('a number in (0, 1)')),
    /** default 0 */
    start: z.int(expected('an integer >= 0')).min(0, expected('an integer >= 0')).optional(),
  },
  'an EMA spec { decay, start? }',
);

/** The augment field's check: each name a DiffAugment policy (an unknown one named, with the known ones). */
const policyCheck = (ctx: z.core.ParsePayload<string>) => {
  try {
    parsePolicy(ctx.value, 'augment');
  } catch (e) {
    ctx.issues.push({ code: 'custom', input: ctx.value, message: (e as Error).message.replace(/^augment: /, '') });
  }
};

export const GanStepSpecSchema = obj(
  {
    /**
     * A key of LOSSES: 'bceWithLogits' (D outputs logits), 'bce' (D ends in Sigmoid, BCELoss),
     * 'leastSquares' (MSE against the labels), 'hinge' or 'wasserstein' (on D's raw output; realLabel 1, fakeLabel 0).
     */
    loss: oneOf(Object.keys(LOSSES) as [LossName, ...LossName[]]),
    /** Target for real images in D's loss (seed 001 smooths to 0.9). G's target is always 1. */
    realLabel: num(),
    fakeLabel: num(),
    /** D loss = real + fake ('sum') or (real + fake) / 2 ('mean'). */
    dLossReduction: oneOf(['sum', 'mean']),
    /** Whether D's fake batch is detached from G (seed 003 does not detach; G's grads are then zeroed before G's step). */
    detachFakeForD: bool,
    /** G's update reuses D's fake batch ('reuse') or draws fresh noise ('fresh'). */
    gNoise: oneOf(['reuse', 'fresh']),
    /** Seed 004: backward() on the real loss and on the fake loss separately, then one D step. */
    separateDBackward: bool,
    noise: NoiseSpecSchema,
    /** Class-conditional models (see ConditioningSpec); absent for unconditional GANs. */
    conditioning: ConditioningSpecSchema.optional(),
    /** A gradient penalty on D's loss (PenaltySpec); absent: none. */
    penalty: PenaltySpecSchema.optional(),
    /** D updates per G update (WGAN-GP's n_critic = 5): G updates on batches whose index in the epoch is a multiple of dSteps. Default 1. */
    dSteps: intAtLeast(1).optional(),
    /** An exponential moving average of G's weights (EmaSpec); absent: none. */
    ema: EmaSpecSchema.optional(),
    /**
     * DiffAugment (Zhao et al. 2020) before D, on real and fake batches in both updates: a policy such as
     * 'color,translation,cutout' (diffAugment's). Needs a convolutional D. Absent: none.
     */
    augment: z.string(expected('a DiffAugment policy string')).check(policyCheck).optional(),
  },
  'a training step spec { loss, realLabel, ... }',
).check((ctx) => {
  const s = ctx.value;
  const loss = LOSSES[s.loss as LossName];
  if (loss && !loss.labels && (s.realLabel !== 1 || s.fakeLabel !== 0))
    ctx.issues.push({
      code: 'custom',
      input: s.realLabel,
      path: ['realLabel'],
      message: `loss '${s.loss}' takes no labels: realLabel must be 1 and fakeLabel 0, got ${s.realLabel} and ${s.fakeLabel}`,
    });
});

export type NoiseSpec = KnownFields<z.output<typeof NoiseSpecSchema>>;
export type ConditioningSpec = KnownFields<z.output<typeof ConditioningSpecSchema>>;
export type PenaltySpec = KnownFields<z.output<typeof PenaltySpecSchema>>;
export type EmaSpec = KnownFields<z.output<typeof EmaSpecSchema>>;
export type GanStepSpec = KnownFields<z.output<typeof GanStepSpecSchema>>;

/** Whether a spec is one of the seeds' steps (no recipe beyond their BCE losses): what every path runs. */
export function isPlainStep(s: GanStepSpec): boolean {
  return (s.loss === 'bceWithLogits' || s.loss === 'bce') && !s.penalty && (s.dSteps ?? 1) === 1 && !s.ema && !s.augment;
}
