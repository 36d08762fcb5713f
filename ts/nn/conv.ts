/** 2-D convolutions with torch.nn's constructor arguments, defaults, initialization and state_dict keys. */
import { z } from 'zod';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import * as F from './functional';
import * as init from './init';
import { bool, expected, intAtLeast, obj, type SpecOf } from '../util/schema';
import { type FactoryOptions, moduleOptions, spectralNormField } from './factory';
import { Module } from './module';
import { nativeWeight } from './utils/parametrize';

type Pair = number | [number, number];
/** 'valid' is no padding; 'same' pads so that the output is as large as the input (stride 1 only). */
export type PaddingString = 'same' | 'valid';

/** An int or a pair of ints, as PyTorch's _pair; `min` is the least value allowed. */
function pair(v: unknown, what: string, min: number): [number, number] {
  const p = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(p) || p.length !== 2 || p.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < min)) {
    const kind = min > 0 ? 'positive integer' : 'non-negative integer';
    throw new TypeError(`${what}: expected a ${kind} or a pair of them, got ${JSON.stringify(v)}`);
  }
  return p as [number, number];
}
function positiveInt(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new TypeError(`${what}: expected a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/** The spec of an int or a pair of ints, each at least `min`. */
const pairOf = (min: number) => z.union([intAtLeast(min), z.tuple([intAtLeast(min), intAtLeast(min)])], expected(`an integer >= ${min} or a pair of them`));
/** The spec fields Conv2d and ConvTranspose2d share (their constructor arguments). */
const convFields = {
  inChannels: intAtLeast(1),
  outChannels: intAtLeast(1),
  kernelSize: pairOf(1),
  stride: pairOf(1).optional(),
  dilation: pairOf(1).optional(),
  groups: intAtLeast(1).optional(),
  bias: bool.optional(),
  spectralNorm: spectralNormField,
};

/** The weight's shape as ConvNd makes it, and the bias's. */
function convShapes(
  s: { inChannels: number; outChannels: number; kernelSize: Pair; groups?: number; bias?: boolean },
  transposed: boolean,
): Record<string, number[]> {
  const [kh, kw] = typeof s.kernelSize === 'number' ? [s.kernelSize, s.kernelSize] : s.kernelSize;
  const g = s.groups ?? 1;
  const weight = transposed ? [s.inChannels, s.outChannels / g, kh, kw] : [s.outChannels, s.inChannels / g, kh, kw];
  return { weight, ...(s.bias === false ? {} : { bias: [s.outChannels] }) };
}

interface ConvOptions extends FactoryOptions {
  stride?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}
export interface Conv2dOptions extends ConvOptions {
  padding?: Pair | PaddingString;
}

/** What Conv2d and ConvTranspose2d share: argument checks, reset_parameters and the input check. */
abstract class ConvNd extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number] | PaddingString;
  readonly dilation: [number, number];
  readonly groups: number;
  protected readonly transposed: boolean;

  constructor(name: string, inChannels: number, outChannels: number, kernelSize: Pair, opts: ConvOptions & { padding?: unknown }, transposed: boolean) {
    super();
    this.transposed = transposed;
    this.inChannels = positiveInt(inChannels, `${name} inChannels`);
    this.outChannels = positiveInt(outChannels, `${name} outChannels`);
    this.kernelSize = pair(kernelSize, `${name} kernelSize`, 1);
    const keys = ['stride', 'padding', 'dilation', 'groups', 'bias', ...(transposed ? ['outputPadding'] : [])];
    const { r, factory: o } = moduleOptions(name, opts, keys);
    this.stride = pair(opts.stride ?? 1, `${name} stride`, 1);
    this.dilation = pair(opts.dilation ?? 1, `${name} dilation`, 1);
    const padding = opts.padding ?? 0;
    if (typeof padding === 'string') {
      if (transposed || (padding !== 'same' && padding !== 'valid'))
        throw new TypeError(
          `${name} padding: expected ${transposed ? '' : "'same', 'valid', "}a non-negative integer or a pair of them, got ${JSON.stringify(padding)}`,
        );
      if (padding === 'same' && this.stride.some((v) => v !== 1))
        throw new RangeError(`${name}: padding='same' is not supported for strided convolutions (stride=(${this.stride.join(', ')}))`);
      this.padding = padding;
    } else this.padding = pair(padding, `${name} padding`, 0);
    this.groups = positiveInt(opts.groups ?? 1, `${name} groups`);
    if (inChannels % this.groups !== 0) throw new RangeError(`${name}: in_channels (${inChannels}) must be divisible by groups (${this.groups})`);
    if (outChannels % this.groups !== 0) throw new RangeError(`${name}: out_channels (${outChannels}) must be divisible by groups (${this.groups})`);
    const [kh, kw] = this.kernelSize;
    const wShape = transposed ? [inChannels, outChannels / this.groups, kh, kw] : [outChannels, inChannels / this.groups, kh, kw];
    const weight = torch.empty(wShape, o);
    const bias = r.booleanOr('bias', true) ? torch.empty([outChannels], o) : null;
    // _ConvNd.reset_parameters, in its RNG order: the weight, then the bias from the weight's fan_in.
    init.kaimingUniform_(weight, Math.sqrt(5));
    if (bias) {
      const [fanIn] = init.calculateFanInAndFanOut(weight);
      if (fanIn !== 0) {
        const bound = 1 / Math.sqrt(fanIn);
        init.uniform_(bias, -bound, bound);
      }
    }
    this.registerParameter('weight', weight);
    this.registerParameter('bias', bias);
  }
  get weight(): Tensor {
    return this._parameters.get('weight')!;
  }
  get bias(): Tensor | null {
    return this._parameters.get('bias') ?? null;
  }
  protected describe(): string {
    return `${this.constructor.name}(${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize.join(', ')}))`;
  }
  /** Checks [N, C, H, W] or [C, H, W] with C = inChannels, and that the output has at least one pixel. */
  /** The padding in pixels per side; 'same' never makes the output smaller than the input, so 0 for the check. */
  protected get pad(): [number, number] {
    return typeof this.padding === 'string' ? [0, 0] : this.padding;
  }
  protected checkInput(x: Tensor, outSize: (inSize: number, i: 0 | 1) => number): void {
    const s = x.shape;
    if (s.length !== 3 && s.length !== 4)
      throw new Error(`${this.describe()}: expected a 4-D input [N, C, H, W] (or 3-D [C, H, W]), got shape [${s.join(', ')}]`);
    const c = s[s.length - 3];
    if (c !== this.inChannels)
      throw new Error(`${this.describe()}: expected input with ${this.inChannels} channels (dimension ${s.length - 3}), got shape [${s.join(', ')}]`);
    const hw = s.slice(-2);
    const out = [outSize(hw[0], 0), outSize(hw[1], 1)];
    if (out.some((d) => d < 1) && this.padding !== 'same') {
      const what = this.transposed
        ? `the output would be ${out.join(' x ')}`
        : `the kernel (${this.kernelSize.join(' x ')}, dilation ${this.dilation.join(' x ')}) is larger than the padded input (${hw.map((d, i) => d + 2 * this.pad[i]).join(' x ')})`;
      throw new Error(`${this.describe()}: input of shape [${s.join(', ')}]: ${what}`);
    }
  }
  override extraRepr(): string {
    let r = `${this.inChannels}, ${this.outChannels}, kernel_size=(${this.kernelSize.join(', ')}), stride=(${this.stride.join(', ')})`;
    if (typeof this.padding === 'string') r += `, padding=${this.padding}`;
    else if (this.padding.some((p) => p !== 0)) r += `, padding=(${this.padding.join(', ')})`;
    if (this.dilation.some((d) => d !== 1)) r += `, dilation=(${this.dilation.join(', ')})`;
    if (this.groups !== 1) r += `, groups=${this.groups}`;
    if (this.bias === null) r += ', bias=False';
    return r;
  }
  /**
   * @internal What the fused trainer's layer reader (native/) reads (a spectral-normed weight: its original, u, v, ...);
   * `name` (the state-dict prefix) names it in errors.
   */
  nativeFields(name: string) {
    return {
      ...nativeWeight(this),
      bias: this.bias?._native ?? null,
      stride: this.stride,
      padding: this.nativePadding(name),
      dilation: this.dilation,
      groups: this.groups,
    };
  }
  /** Symmetric padding per side: 'valid' is 0, 'same' is dilation * (k - 1) / 2 (odd kernels; stride 1 is checked by the constructor). */
  private nativePadding(name: string): [number, number] {
    if (typeof this.padding !== 'string') return this.padding;
    if (this.padding === 'valid') return [0, 0];
    const total = this.kernelSize.map((k, i) => this.dilation[i] * (k - 1));
    if (total.some((t) => t % 2 !== 0))
      throw new TypeError(
        `the fused trainer runs padding='same' only where it is symmetric; ${name || '(root)'} has kernel ${this.kernelSize.join('x')} (give the padding as numbers)`,
      );
    return [total[0] / 2, total[1] / 2];
  }
}

/** As torch.nn.Conv2d (zero padding): weight [out, in/groups, kh, kw], through aten::conv2d. */
export class Conv2d extends ConvNd {
  static readonly spec = obj(
    {
      type: z.literal('Conv2d'),
      ...convFields,
      padding: z.union([pairOf(0), z.enum(['same', 'valid'])], expected("an integer >= 0, a pair of them, 'same' or 'valid'")).optional(),
    },
    'a Conv2d spec',
  );
  static fromSpec(s: SpecOf<typeof Conv2d.spec>, o: FactoryOptions = {}): Conv2d {
    const { inChannels, outChannels, kernelSize, stride, padding, dilation, groups, bias } = s;
    return new Conv2d(inChannels, outChannels, kernelSize, { ...o, stride, padding, dilation, groups, bias });
  }
  static parameterShapes(s: SpecOf<typeof Conv2d.spec>): Record<string, number[]> {
    return convShapes(s, false);
  }
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: Conv2dOptions = {}) {
    super('Conv2d', inChannels, outChannels, kernelSize, opts, false);
  }
  forward(x: Tensor): Tensor {
    const [k, s, p, d] = [this.kernelSize, this.stride, this.pad, this.dilation];
    this.checkInput(x, (n, i) => Math.floor((n + 2 * p[i] - d[i] * (k[i] - 1) - 1) / s[i]) + 1);
    return F.conv2d(x, this.weight, this.bias, { stride: s, padding: this.padding, dilation: d, groups: this.groups });
  }
}

export interface ConvTranspose2dOptions extends ConvOptions {
  padding?: Pair;
  outputPadding?: Pair;
}

/** As torch.nn.ConvTranspose2d: weight [in, out/groups, kh, kw], through aten::conv_transpose2d.input. */
export class ConvTranspose2d extends ConvNd {
  static readonly spec = obj(
    { type: z.literal('ConvTranspose2d'), ...convFields, padding: pairOf(0).optional(), outputPadding: pairOf(0).optional() },
    'a ConvTranspose2d spec',
  );
  static fromSpec(s: SpecOf<typeof ConvTranspose2d.spec>, o: FactoryOptions = {}): ConvTranspose2d {
    const { inChannels, outChannels, kernelSize, stride, padding, outputPadding, dilation, groups, bias } = s;
    return new ConvTranspose2d(inChannels, outChannels, kernelSize, { ...o, stride, padding, outputPadding, dilation, groups, bias });
  }
  static parameterShapes(s: SpecOf<typeof ConvTranspose2d.spec>): Record<string, number[]> {
    return convShapes(s, true);
  }
  readonly outputPadding: [number, number];
  declare readonly padding: [number, number]; // a string padding is rejected in ConvNd's constructor
  constructor(inChannels: number, outChannels: number, kernelSize: Pair, opts: ConvTranspose2dOptions = {}) {
    super('ConvTranspose2d', inChannels, outChannels, kernelSize, opts, true);
    this.outputPadding = pair(opts.outputPadding ?? 0, 'ConvTranspose2d outputPadding', 0);
    this.outputPadding.forEach((op, i) => {
      if (op >= this.stride[i] && op >= this.dilation[i])
        throw new RangeError(
          `ConvTranspose2d outputPadding: output padding must be smaller than either stride or dilation, got output_padding=(${this.outputPadding.join(', ')}), stride=(${this.stride.join(', ')}), dilation=(${this.dilation.join(', ')})`,
        );
    });
  }
  forward(x: Tensor): Tensor {
    const [k, s, p, d, op] = [this.kernelSize, this.stride, this.padding, this.dilation, this.outputPadding];
    this.checkInput(x, (n, i) => (n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1);
    return F.convTranspose2d(x, this.weight, this.bias, { stride: s, padding: p, outputPadding: op, groups: this.groups, dilation: d });
  }
  override extraRepr(): string {
    const r = super.extraRepr();
    return this.outputPadding.some((v) => v !== 0) ? `${r}, output_padding=(${this.outputPadding.join(', ')})` : r;
  }
  /** @internal */
  override nativeFields(name: string) {
    return { ...super.nativeFields(name), outputPadding: this.outputPadding };
  }
}
