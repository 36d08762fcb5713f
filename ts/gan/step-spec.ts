/**
 * The variants of one GAN training step found in the seeds' scripts. The fused native step and the
 * facade's imperative reference loop both read this.
 */
export interface NoiseSpec {
  /** 'uniform' draws from [low, high) (torch.rand * (high - low) + low); 'normal' is torch.randn. */
  dist: 'uniform' | 'normal';
  dim: number;
  low?: number; // default -1
  high?: number; // default 1
}

export interface GanStepSpec {
  /** 'bceWithLogits': D outputs logits; 'bce': D ends in Sigmoid and the loss is BCELoss. */
  loss: 'bceWithLogits' | 'bce';
  /** Target for real images in D's loss (seed 001 smooths to 0.9). G's target is always 1. */
  realLabel: number;
  fakeLabel: number;
  /** D loss = real + fake ('sum') or (real + fake) / 2 ('mean'). */
  dLossReduction: 'sum' | 'mean';
  /** Whether D's fake batch is detached from G (seed 003 does not detach; G's grads are then zeroed before G's step). */
  detachFakeForD: boolean;
  /** G's update reuses D's fake batch ('reuse') or draws fresh noise ('fresh'). */
  gNoise: 'reuse' | 'fresh';
  /** Seed 004: backward() on the real loss and on the fake loss separately, then one D step. */
  separateDBackward: boolean;
  noise: NoiseSpec;
}
