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
 *   native/gan_core.cc        the loss on the fused step (mlp_path.cc: its gradient, or the fast path refuses it)
 *   test/parity/reference.py  the step as PyTorch writes it; regenerate test/parity/fixtures (regenerate.sh)
 */
import { z } from 'zod';
import * as F from '../nn/functional';
import { type Tensor } from '../tensor/tensor';
import { bool, expected, intAtLeast, type KnownFields, num, obj, oneOf } from '../util/schema';

/**
 * The losses D and G train with, by spec name: `loss(out, target)` on D's output, `prob(out)` the mean
 * probability D gives (reported as dReal and dFake), `torchName` PyTorch's module for it.
 */
export const LOSSES = {
  /** D outputs logits. */
  bceWithLogits: { torchName: 'BCEWithLogitsLoss', loss: F.binaryCrossEntropyWithLogits, prob: (out: Tensor) => out.sigmoid().mean() },
  /** D ends in Sigmoid: its output is already a probability. */
  bce: { torchName: 'BCELoss', loss: F.binaryCrossEntropy, prob: (out: Tensor) => out.mean() },
} as const;
export type LossName = keyof typeof LOSSES;

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

export const GanStepSpecSchema = obj(
  {
    /** A key of LOSSES: 'bceWithLogits' (D outputs logits) or 'bce' (D ends in Sigmoid, BCELoss). */
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
  },
  'a training step spec { loss, realLabel, ... }',
);

export type NoiseSpec = KnownFields<z.output<typeof NoiseSpecSchema>>;
export type ConditioningSpec = KnownFields<z.output<typeof ConditioningSpecSchema>>;
export type GanStepSpec = KnownFields<z.output<typeof GanStepSpecSchema>>;
