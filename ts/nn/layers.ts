/** The layers the seeds use, with torch.nn's constructor arguments, defaults and initialization. */
import { type Device, type DType } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import * as F from './functional';
import { Module } from './module';

function checkPositiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TypeError(`${what}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

export interface FactoryOptions {
  dtype?: DType;
  device?: Device;
}

/** y = x W^T + b. Initialized as torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) for W, U(-1/sqrt(in), 1/sqrt(in)) for b. */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;
  constructor(inFeatures: number, outFeatures: number, opts: FactoryOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = checkPositiveInt(inFeatures, 'Linear inFeatures');
    this.outFeatures = checkPositiveInt(outFeatures, 'Linear outFeatures');
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' } as const;
    const weight = torch.empty([outFeatures, inFeatures], o);
    const bias = opts.bias === false ? null : torch.empty([outFeatures], o);
    // Same arithmetic as torch.nn.init.kaiming_uniform_ and Linear.reset_parameters, same RNG order.
    const a = Math.sqrt(5);
    const gain = Math.sqrt(2.0 / (1 + a ** 2));
    const std = gain / Math.sqrt(inFeatures);
    const wBound = Math.sqrt(3.0) * std;
    torch.noGrad(() => {
      weight.uniform_(-wBound, wBound);
      if (bias) {
        const bBound = 1 / Math.sqrt(inFeatures);
        bias.uniform_(-bBound, bBound);
      }
    });
    this.registerParameter('weight', weight);
    this.registerParameter('bias', bias);
  }
  get weight(): Tensor {
    return this._parameters.get('weight')!;
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  forward(x: Tensor): Tensor {
    const shape = x.shape;
    if (shape.length === 0 || shape[shape.length - 1] !== this.inFeatures) {
      throw new Error(
        `Linear(${this.inFeatures}, ${this.outFeatures}): expected an input whose last dimension is ${this.inFeatures}, got shape [${shape.join(', ')}]`,
      );
    }
    return F.linear(x, this.weight, this.bias);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
    if (typeof negativeSlope !== 'number' || !Number.isFinite(negativeSlope))
      throw new TypeError(`LeakyReLU negativeSlope: expected a number, got ${JSON.stringify(negativeSlope)}`);
  }
  forward(x: Tensor): Tensor {
    return F.leakyRelu(x, this.negativeSlope);
  }
  override extraRepr(): string {
    return `negative_slope=${this.negativeSlope}`;
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (!(typeof p === 'number' && p >= 0 && p <= 1)) throw new RangeError(`dropout probability has to be between 0 and 1, but got ${p}`);
  }
  forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

/** Batch normalization over [N, C]; running statistics with momentum, as torch.nn.BatchNorm1d. */
export class BatchNorm1d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;
  constructor(numFeatures: number, opts: FactoryOptions & { eps?: number; momentum?: number; affine?: boolean } = {}) {
    super();
    this.numFeatures = checkPositiveInt(numFeatures, 'BatchNorm1d numFeatures');
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum ?? 0.1;
    const o = { dtype: opts.dtype ?? 'float32', device: opts.device ?? 'cpu' } as const;
    const affine = opts.affine ?? true;
    this.registerParameter('weight', affine ? torch.ones([numFeatures], o) : null);
    this.registerParameter('bias', affine ? torch.zeros([numFeatures], o) : null);
    this.registerBuffer('running_mean', torch.zeros([numFeatures], o));
    this.registerBuffer('running_var', torch.ones([numFeatures], o));
    this.registerBuffer('num_batches_tracked', torch.zeros([], { dtype: 'int64', device: o.device }));
  }
  forward(x: Tensor): Tensor {
    const s = x.shape;
    if ((s.length !== 2 && s.length !== 3) || s[1] !== this.numFeatures) {
      throw new Error(
        `BatchNorm1d(${this.numFeatures}): expected input of shape [N, ${this.numFeatures}] or [N, ${this.numFeatures}, L], got [${s.join(', ')}]`,
      );
    }
    if (this.training) torch.noGrad(() => this._buffers.get('num_batches_tracked')!.add_(1));
    return F.batchNorm(
      x,
      this._buffers.get('running_mean')!,
      this._buffers.get('running_var')!,
      this._parameters.get('weight') ?? null,
      this._parameters.get('bias') ?? null,
      this.training,
      this.momentum,
      this.eps,
    );
  }
  override extraRepr(): string {
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum}`;
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
}

export class Unflatten extends Module {
  constructor(
    readonly dim: number,
    readonly unflattenedSize: number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.unflatten(this.dim, this.unflattenedSize);
  }
}

/** Runs its modules in order; they are named "0", "1", ... as in PyTorch. */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => {
      if (!(m instanceof Module)) throw new TypeError(`Sequential: argument ${i} is not a Module`);
      this.registerModule(String(i), m);
    });
  }
  forward(x: Tensor): Tensor {
    let out = x;
    for (const m of this._modules.values()) {
      const next = m.forward(out);
      out = next;
    }
    return out;
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? this._modules.size + i : i));
    if (!m) throw new RangeError(`Sequential index ${i} out of range (length ${this._modules.size})`);
    return m;
  }
}
