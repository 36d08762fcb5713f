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
  /**
   * One sample's shape (product = dim); default [dim]. A convolutional generator takes [dim, 1, 1],
   * as pytorch/examples' DCGAN draws torch.randn(N, nz, 1, 1).
   */
  shape?: number[];
}

/**
 * A class-conditional GAN: the label's one-hot vector is concatenated to G's noise and to D's input
 * in dimension 1 (for images, as `classes` constant planes of H x W), as in the common PyTorch cGAN and
 * conditional DCGAN scripts. Parameter-free conditioning keeps G and D plain Sequentials whose
 * state_dict keys are PyTorch's, and a one-hot vector fed to the first Linear or convolution is exactly
 * a learned label embedding added to that layer's output. Real batches carry their dataset labels;
 * G's labels for fakes are drawn uniformly from [0, classes) (after the noise, from the same generator).
 */
export interface ConditioningSpec {
  classes: number;
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
  /** Class-conditional models (see ConditioningSpec); absent for unconditional GANs. */
  conditioning?: ConditioningSpec;
}
