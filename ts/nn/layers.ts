/**
 * The layers the seeds use, with torch.nn's constructor arguments, defaults and initialization. A class
 * with a static `spec` (its constructor arguments' schema) and `fromSpec` is a layer kind presets can
 * name (spec.ts collects them); one with `nativeFields()` also runs in the fused trainer.
 */
import { z } from 'zod';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import * as F from './functional';
import * as init from './init';
import { bool, expected, int, intAtLeast, num, obj, type SpecOf } from '../util/schema';
import { Module } from './module';
import { checkPositiveInt, type FactoryOptions, moduleOptions, spectralNormField } from './factory';
import { nativeWeight } from './utils/parametrize';

export type { FactoryOptions } from './factory';

/** y = x W^T + b. Initialized as torch.nn.Linear: kaiming_uniform_(a=sqrt(5)) for W, U(-1/sqrt(in), 1/sqrt(in)) for b. */
export class Linear extends Module {
  static readonly spec = obj(
    { type: z.literal('Linear'), inFeatures: intAtLeast(1), outFeatures: intAtLeast(1), bias: bool.optional(), spectralNorm: spectralNormField },
    'a Linear spec',
  );
  static fromSpec(s: SpecOf<typeof Linear.spec>, o: FactoryOptions = {}): Linear {
    return new Linear(s.inFeatures, s.outFeatures, { ...o, bias: s.bias });
  }
  static parameterShapes(s: SpecOf<typeof Linear.spec>): Record<string, number[]> {
    return { weight: [s.outFeatures, s.inFeatures], ...(s.bias === false ? {} : { bias: [s.outFeatures] }) };
  }
  readonly inFeatures: number;
  readonly outFeatures: number;
  constructor(inFeatures: number, outFeatures: number, opts: FactoryOptions & { bias?: boolean } = {}) {
    super();
    this.inFeatures = checkPositiveInt(inFeatures, 'Linear inFeatures');
    this.outFeatures = checkPositiveInt(outFeatures, 'Linear outFeatures');
    const { r, factory: o } = moduleOptions('Linear', opts, ['bias']);
    const weight = torch.empty([outFeatures, inFeatures], o);
    const bias = r.booleanOr('bias', true) ? torch.empty([outFeatures], o) : null;
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
  /** @internal What the fused trainer's layer reader (native/) reads for this kind (a spectral-normed weight: its original, u, v, ...). */
  nativeFields() {
    return { ...nativeWeight(this), bias: this.bias?._native ?? null };
  }
}

export class ReLU extends Module {
  static readonly spec = obj({ type: z.literal('ReLU') }, 'a ReLU spec');
  static fromSpec(): ReLU {
    return new ReLU();
  }
  /** @internal */
  nativeFields() {
    return {};
  }
  forward(x: Tensor): Tensor {
    return F.relu(x);
  }
}

export class LeakyReLU extends Module {
  static readonly spec = obj({ type: z.literal('LeakyReLU'), negativeSlope: num().optional() }, 'a LeakyReLU spec');
  static fromSpec(s: SpecOf<typeof LeakyReLU.spec>): LeakyReLU {
    return new LeakyReLU(s.negativeSlope);
  }
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
  /** @internal */
  nativeFields() {
    return { negativeSlope: this.negativeSlope };
  }
}

export class Tanh extends Module {
  static readonly spec = obj({ type: z.literal('Tanh') }, 'a Tanh spec');
  static fromSpec(): Tanh {
    return new Tanh();
  }
  /** @internal */
  nativeFields() {
    return {};
  }
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}

export class Sigmoid extends Module {
  static readonly spec = obj({ type: z.literal('Sigmoid') }, 'a Sigmoid spec');
  static fromSpec(): Sigmoid {
    return new Sigmoid();
  }
  /** @internal */
  nativeFields() {
    return {};
  }
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}

export class Dropout extends Module {
  static readonly spec = obj(
    { type: z.literal('Dropout'), p: num('a number in [0, 1]').min(0, expected('a number in [0, 1]')).max(1, expected('a number in [0, 1]')).optional() },
    'a Dropout spec',
  );
  static fromSpec(s: SpecOf<typeof Dropout.spec>): Dropout {
    return new Dropout(s.p);
  }
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
  /** @internal */
  nativeFields() {
    return { p: this.p };
  }
}

/** A lookup table of numEmbeddings rows, initialized N(0, 1) as torch.nn.Embedding (paddingIdx's row zero). */
export class Embedding extends Module {
  static readonly spec = obj(
    { type: z.literal('Embedding'), numEmbeddings: intAtLeast(1), embeddingDim: intAtLeast(1), paddingIdx: int().nullable().optional() },
    'an Embedding spec',
  );
  static fromSpec(s: SpecOf<typeof Embedding.spec>, o: FactoryOptions = {}): Embedding {
    return new Embedding(s.numEmbeddings, s.embeddingDim, { ...o, paddingIdx: s.paddingIdx });
  }
  static parameterShapes(s: SpecOf<typeof Embedding.spec>): Record<string, number[]> {
    return { weight: [s.numEmbeddings, s.embeddingDim] };
  }
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;
  constructor(numEmbeddings: number, embeddingDim: number, opts: FactoryOptions & { paddingIdx?: number | null } = {}) {
    super();
    this.numEmbeddings = checkPositiveInt(numEmbeddings, 'Embedding numEmbeddings');
    this.embeddingDim = checkPositiveInt(embeddingDim, 'Embedding embeddingDim');
    const { factory: o } = moduleOptions('Embedding', opts, ['paddingIdx']);
    let idx = opts.paddingIdx ?? null;
    if (idx !== null) {
      if (!Number.isInteger(idx) || idx >= numEmbeddings || idx < -numEmbeddings)
        throw new RangeError(`Embedding paddingIdx: must be an integer within num_embeddings (${numEmbeddings}), got ${JSON.stringify(idx)}`);
      if (idx < 0) idx += numEmbeddings; // as PyTorch, which stores the non-negative index
    }
    this.paddingIdx = idx;
    const weight = torch.empty([numEmbeddings, embeddingDim], o);
    init.normal_(weight);
    if (idx !== null) torch.noGrad(() => weight.select(0, idx).fill_(0));
    this.registerParameter('weight', weight);
  }
  get weight(): Tensor {
    return this._parameters.get('weight')!;
  }
  forward(x: Tensor): Tensor {
    if (x.dtype !== 'int64' && x.dtype !== 'int32')
      throw new TypeError(`Embedding(${this.numEmbeddings}, ${this.embeddingDim}): expected an int64 (or int32) tensor of indices, got dtype ${x.dtype}`);
    return F.embedding(x, this.weight, this.paddingIdx);
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx === null ? '' : `, padding_idx=${this.paddingIdx}`}`;
  }
}

export class Flatten extends Module {
  static readonly spec = obj({ type: z.literal('Flatten'), startDim: int().optional(), endDim: int().optional() }, 'a Flatten spec');
  static fromSpec(s: SpecOf<typeof Flatten.spec>): Flatten {
    return new Flatten(s.startDim, s.endDim);
  }
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.flatten(this.startDim, this.endDim);
  }
  /** @internal */
  nativeFields() {
    return { startDim: this.startDim, endDim: this.endDim };
  }
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: number | [number, number],
    readonly stride?: number | [number, number],
    readonly padding: number | [number, number] = 0,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.kernelSize, this.stride, this.padding);
  }
}

export class Unflatten extends Module {
  static readonly spec = obj(
    { type: z.literal('Unflatten'), dim: int(), unflattenedSize: z.array(intAtLeast(1), expected('an array of integers >= 1')) },
    'an Unflatten spec',
  );
  static fromSpec(s: SpecOf<typeof Unflatten.spec>): Unflatten {
    return new Unflatten(s.dim, s.unflattenedSize);
  }
  constructor(
    readonly dim: number,
    readonly unflattenedSize: number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.unflatten(this.dim, this.unflattenedSize);
  }
  /** @internal */
  nativeFields() {
    return { dim: this.dim, sizes: this.unflattenedSize };
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
