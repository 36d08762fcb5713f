/** BatchNorm1d and BatchNorm2d with torch.nn's arguments, defaults, running statistics and state_dict keys. */
import { z } from 'zod';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { bool, expected, intAtLeast, num, obj, type SpecOf } from '../util/schema';
import * as F from './functional';
import { checkPositiveInt, type FactoryOptions, moduleOptions } from './factory';
import { Module } from './module';

export interface BatchNormOptions extends FactoryOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** The spec fields every BatchNormNd shares (its constructor arguments). */
const batchNormFields = {
  numFeatures: intAtLeast(1),
  eps: num('a number >= 0').min(0, expected('a number >= 0')).optional(),
  momentum: num().optional(),
  affine: bool.optional(),
  trackRunningStats: bool.optional(),
};
/** Its running statistics are buffers, not parameters. */
const batchNormShapes = (s: { numFeatures: number; affine?: boolean }): Record<string, number[]> =>
  s.affine === false ? {} : { weight: [s.numFeatures], bias: [s.numFeatures] };
const batchNormOptions = (s: BatchNormOptions, o: FactoryOptions): BatchNormOptions => ({
  ...o,
  eps: s.eps,
  momentum: s.momentum,
  affine: s.affine,
  trackRunningStats: s.trackRunningStats,
});

/** torch.nn.modules.batchnorm._BatchNorm: the parameters, buffers and forward every BatchNormNd shares. */
abstract class BatchNorm extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;
  constructor(numFeatures: number, opts: BatchNormOptions) {
    super();
    const name = this.constructor.name;
    this.numFeatures = checkPositiveInt(numFeatures, `${name} numFeatures`);
    const { r, factory: o } = moduleOptions(name, opts, ['eps', 'momentum', 'affine', 'trackRunningStats']);
    this.eps = opts.eps ?? 1e-5;
    if (typeof this.eps !== 'number' || !(this.eps >= 0)) throw new TypeError(`${name} eps: expected a non-negative number, got ${JSON.stringify(opts.eps)}`);
    // momentum=None (a cumulative average) is left out: the fused trainer's BatchNorm1d takes a number
    this.momentum = opts.momentum ?? 0.1;
    if (typeof this.momentum !== 'number' || !Number.isFinite(this.momentum))
      throw new TypeError(`${name} momentum: expected a number, got ${JSON.stringify(opts.momentum)}`);
    this.affine = r.booleanOr('affine', true);
    this.trackRunningStats = r.booleanOr('trackRunningStats', true);
    this.registerParameter('weight', this.affine ? torch.ones([numFeatures], o) : null);
    this.registerParameter('bias', this.affine ? torch.zeros([numFeatures], o) : null);
    const track = this.trackRunningStats;
    this.registerBuffer('running_mean', track ? torch.zeros([numFeatures], o) : null);
    this.registerBuffer('running_var', track ? torch.ones([numFeatures], o) : null);
    this.registerBuffer('num_batches_tracked', track ? torch.zeros([], { dtype: 'int64', device: o.device }) : null);
  }
  protected abstract checkInput(x: Tensor): void;
  forward(x: Tensor): Tensor {
    this.checkInput(x);
    const runningMean = this._buffers.get('running_mean') ?? null;
    const runningVar = this._buffers.get('running_var') ?? null;
    const tracked = this._buffers.get('num_batches_tracked') ?? null;
    // as _BatchNorm.forward: only a training step with running stats counts the batch
    if (this.training && this.trackRunningStats && tracked) torch.noGrad(() => tracked.add_(1));
    // in eval mode without running stats, normalize by the batch's own statistics
    const bnTraining = this.training || (runningMean === null && runningVar === null);
    const useStats = !this.training || this.trackRunningStats;
    return F.batchNorm(
      x,
      useStats ? runningMean : null,
      useStats ? runningVar : null,
      this._parameters.get('weight') ?? null,
      this._parameters.get('bias') ?? null,
      bnTraining,
      this.momentum,
      this.eps,
    );
  }
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}, affine=${this.affine ? 'True' : 'False'}, track_running_stats=${this.trackRunningStats ? 'True' : 'False'}`;
  }
  /** @internal Tensors are null without affine (weight, bias) or without running statistics (the buffers). */
  nativeFields() {
    const nat = (t: Tensor | null | undefined) => t?._native ?? null;
    return {
      weight: nat(this._parameters.get('weight')),
      bias: nat(this._parameters.get('bias')),
      runningMean: nat(this._buffers.get('running_mean')),
      runningVar: nat(this._buffers.get('running_var')),
      numBatchesTracked: nat(this._buffers.get('num_batches_tracked')),
      eps: this.eps,
      momentum: this.momentum,
    };
  }
}

/** Batch normalization over [N, C] or [N, C, L], as torch.nn.BatchNorm1d. */
export class BatchNorm1d extends BatchNorm {
  static readonly spec = obj({ type: z.literal('BatchNorm1d'), ...batchNormFields }, 'a BatchNorm1d spec');
  static fromSpec(s: SpecOf<typeof BatchNorm1d.spec>, o: FactoryOptions = {}): BatchNorm1d {
    return new BatchNorm1d(s.numFeatures, batchNormOptions(s, o));
  }
  static parameterShapes(s: SpecOf<typeof BatchNorm1d.spec>): Record<string, number[]> {
    return batchNormShapes(s);
  }
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts);
  }
  protected checkInput(x: Tensor): void {
    const s = x.shape;
    if ((s.length !== 2 && s.length !== 3) || s[1] !== this.numFeatures) {
      throw new Error(
        `BatchNorm1d(${this.numFeatures}): expected input of shape [N, ${this.numFeatures}] or [N, ${this.numFeatures}, L], got [${s.join(', ')}]`,
      );
    }
  }
}

/** Batch normalization over [N, C, H, W] per channel, as torch.nn.BatchNorm2d. */
export class BatchNorm2d extends BatchNorm {
  static readonly spec = obj({ type: z.literal('BatchNorm2d'), ...batchNormFields }, 'a BatchNorm2d spec');
  static fromSpec(s: SpecOf<typeof BatchNorm2d.spec>, o: FactoryOptions = {}): BatchNorm2d {
    return new BatchNorm2d(s.numFeatures, batchNormOptions(s, o));
  }
  static parameterShapes(s: SpecOf<typeof BatchNorm2d.spec>): Record<string, number[]> {
    return batchNormShapes(s);
  }
  constructor(numFeatures: number, opts: BatchNormOptions = {}) {
    super(numFeatures, opts);
  }
  protected checkInput(x: Tensor): void {
    const s = x.shape;
    if (s.length !== 4 || s[1] !== this.numFeatures)
      throw new Error(`BatchNorm2d(${this.numFeatures}): expected a 4-D input [N, ${this.numFeatures}, H, W], got shape [${s.join(', ')}]`);
  }
}
