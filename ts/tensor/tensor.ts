/**
 * Tensor: the facade over a native at::Tensor. Methods mirror torch.Tensor's (camelCase); every op is
 * dispatched by LibTorch, so autograd, broadcasting, type promotion and error messages are PyTorch's.
 */
import { type NativeTensor } from '../native/addon';
import { checkShape, type Device, type DType, describeValue, type MemoryFormatOptions, memoryFormatArg, parseToTarget } from './dtype';
import { checkGradFits } from './grad-check';
import { isNative, op } from './op-cache';
import { track } from './scope';
import { readOptions, typeError } from '../util/options';

function unwrapArg(a: unknown): unknown {
  if (a instanceof Tensor) return a._native;
  if (Array.isArray(a)) return a.map(unwrapArg);
  return a;
}

function wrapResult(r: unknown): unknown {
  if (isNative(r)) return new Tensor(r);
  if (Array.isArray(r)) return r.map(wrapResult);
  return r;
}

/** Calls an ATen operator ("aten::name", overload) with Tensors, numbers, arrays or keyword arguments. */
export function callOp(name: string, overload: string, args: unknown[], kwargs?: Record<string, unknown>): unknown {
  const kw = kwargs ? Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, unwrapArg(v)])) : undefined;
  return wrapResult(op(name, overload).call(args.map(unwrapArg), kw));
}

function t1(name: string, overload: string, args: unknown[], kwargs?: Record<string, unknown>): Tensor {
  return callOp(name, overload, args, kwargs) as Tensor;
}

export type Scalar = number;
export type TensorLike = Tensor | number;

/** Picks the Scalar or Tensor overload, as Python does for `x + 1` vs `x + y`. */
function binary(name: string, self: Tensor, other: TensorLike, extra: unknown[] = [], inplace = false): Tensor {
  return t1(`aten::${inplace ? `${name}_` : name}`, typeof other === 'number' ? 'Scalar' : 'Tensor', [self, other, ...extra]);
}

export class Tensor {
  /** @internal */
  _native: NativeTensor;

  /** @internal Wraps a native handle; use torch.tensor() and friends to make tensors. */
  constructor(native: NativeTensor) {
    this._native = native;
    track(this);
  }

  /**
   * @internal PyTorch's `t.data = src`: this very tensor (the same native TensorImpl, which optimizers and
   * the fused step hold too) takes src's storage, dtype and device, keeping requiresGrad and its grad.
   * Module.to converts parameters this way, so whatever holds them sees the converted ones.
   */
  _setData(src: Tensor): void {
    callOp('aten::set_data', '', [this, src]);
  }

  get shape(): number[] {
    return this._native.shape();
  }
  size(dim?: number): number | number[] {
    const s = this.shape;
    if (dim === undefined) return s;
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`size(${dim}): dimension out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  get ndim(): number {
    return this.shape.length;
  }
  dim(): number {
    return this.ndim;
  }
  numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get dtype(): DType {
    return this._native.dtype() as DType;
  }
  get device(): Device {
    return this._native.device() as Device;
  }
  get requiresGrad(): boolean {
    return this._native.requiresGrad();
  }
  set requiresGrad(v: boolean) {
    this._native.setRequiresGrad(v);
  }
  requiresGrad_(v = true): this {
    this._native.setRequiresGrad(v);
    return this;
  }
  get isLeaf(): boolean {
    return this._native.isLeaf();
  }
  /** The accumulated gradient, or null. */
  get grad(): Tensor | null {
    const g = this._native.grad();
    return g ? new Tensor(g) : null;
  }
  /** Assigns the gradient; null or undefined clears it. Checked here as PyTorch checks `x.grad = g`. */
  set grad(g: Tensor | null) {
    if (g === null || g === undefined) {
      this._native.setGrad(null);
      return;
    }
    if (!(g instanceof Tensor)) throw new TypeError(`assigned grad expected to be a Tensor or null but got ${describeValue(g)}`);
    if (g === this || (!g.isDisposed && this._native.sameAs(g._native))) throw new Error("can't assign a tensor as its own grad");
    if (g.isDisposed) throw new Error('assigned grad was disposed and cannot be used');
    checkGradFits(g, this); // native kernels (the optimizers' fused updates among them) trust that it does
    this._native.setGrad(g._native);
  }
  get isDisposed(): boolean {
    return this._native.isDisposed();
  }
  /** Frees the native memory now. Using the tensor afterwards is an error. */
  dispose(): void {
    this._native.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * The gradient of this tensor into the leaves' `.grad`, as torch.Tensor.backward (retainGraph defaults to
   * createGraph). createGraph links each leaf and its `.grad` in a cycle, as in PyTorch: set `p.grad = null`
   * after use, or use torch.autograd.grad.
   */
  backward(gradient?: Tensor | null, options?: { retainGraph?: boolean; createGraph?: boolean }): void {
    if (gradient !== undefined && gradient !== null && !(gradient instanceof Tensor)) throw typeError('backward: gradient', 'a Tensor or null', gradient);
    const o = readOptions('backward', options, ['retainGraph', 'createGraph'], { optional: true });
    const createGraph = o.booleanOr('createGraph', false);
    this._native.backward(gradient ? gradient._native : null, o.booleanOr('retainGraph', createGraph), createGraph);
  }
  item(): number {
    return Number(this._native.item());
  }
  /** A copy of the data as a Float32Array (converting from any dtype). */
  toFloat32Array(): Float32Array {
    const t = this.dtype === 'float32' ? this : this.to('float32');
    const out = t._native.toTypedArray() as Float32Array;
    if (t !== this) t.dispose();
    return out;
  }
  /** A copy of the data in the typed array of its dtype (BigInt64Array for int64). */
  toTypedArray(): ReturnType<NativeTensor['toTypedArray']> {
    return this._native.toTypedArray();
  }
  /** Nested arrays of numbers, as tolist(). */
  tolist(): unknown {
    const flat = Array.from(this.toTypedArray() as ArrayLike<number | bigint>, Number);
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    const build = (dim: number, offset: number): unknown[] => {
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: shape[dim] }, (_, i) => (dim === shape.length - 1 ? flat[offset + i] : build(dim + 1, offset + i * stride)));
    };
    return build(0, 0);
  }
  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // --- conversion ---
  detach(): Tensor {
    return t1('aten::detach', '', [this]);
  }
  detach_(): this {
    callOp('aten::detach_', '', [this]);
    return this;
  }
  clone(): Tensor {
    return t1('aten::clone', '', [this]);
  }
  /** contiguous(), or `{ memoryFormat: 'channelsLast' }` as PyTorch's memory_format=torch.channels_last (NHWC strides). */
  contiguous(options?: MemoryFormatOptions): Tensor {
    return t1('aten::contiguous', '', [this], { memory_format: memoryFormatArg('Tensor.contiguous', options) });
  }
  /** Whether the strides are contiguous in that memory format ('contiguous' by default), as PyTorch's is_contiguous. */
  isContiguous(options?: MemoryFormatOptions): boolean {
    return callOp('aten::is_contiguous', 'memory_format', [this], { memory_format: memoryFormatArg('Tensor.isContiguous', options) }) as boolean;
  }

  /** to('cuda'), to('float64'), or to({ device, dtype }). */
  to(target: Device | DType | { device?: Device; dtype?: DType }): Tensor {
    const { device, dtype } = parseToTarget(target, 'Tensor.to');
    return t1('aten::to', 'dtype_layout', [this], { dtype: dtype ?? null, device: device ?? null, non_blocking: false, copy: false });
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(): Tensor {
    return this.to('cuda');
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }

  // --- arithmetic (Python's operators) ---
  add(other: TensorLike, alpha = 1): Tensor {
    return binary('add', this, other, [alpha]);
  }
  sub(other: TensorLike, alpha = 1): Tensor {
    return binary('sub', this, other, [alpha]);
  }
  mul(other: TensorLike): Tensor {
    return binary('mul', this, other);
  }
  div(other: TensorLike): Tensor {
    return binary('div', this, other);
  }
  neg(): Tensor {
    return t1('aten::neg', '', [this]);
  }
  pow(exponent: TensorLike): Tensor {
    return typeof exponent === 'number' ? t1('aten::pow', 'Tensor_Scalar', [this, exponent]) : t1('aten::pow', 'Tensor_Tensor', [this, exponent]);
  }
  matmul(other: Tensor): Tensor {
    return t1('aten::matmul', '', [this, other]);
  }
  mm(other: Tensor): Tensor {
    return t1('aten::mm', '', [this, other]);
  }
  add_(other: TensorLike, alpha = 1): this {
    binary('add', this, other, [alpha], true).dispose();
    return this;
  }
  sub_(other: TensorLike, alpha = 1): this {
    binary('sub', this, other, [alpha], true).dispose();
    return this;
  }
  mul_(other: TensorLike): this {
    binary('mul', this, other, [], true).dispose();
    return this;
  }
  div_(other: TensorLike): this {
    binary('div', this, other, [], true).dispose();
    return this;
  }
  fill_(value: number): this {
    t1('aten::fill_', 'Scalar', [this, value]).dispose();
    return this;
  }
  fill(value: number): this {
    return this.fill_(value);
  }
  zero_(): this {
    t1('aten::zero_', '', [this]).dispose();
    return this;
  }
  copy_(src: Tensor): this {
    t1('aten::copy_', '', [this, src]).dispose();
    return this;
  }
  uniform_(from = 0, to = 1): this {
    t1('aten::uniform_', '', [this, from, to]).dispose();
    return this;
  }
  normal_(mean = 0, std = 1): this {
    t1('aten::normal_', '', [this, mean, std]).dispose();
    return this;
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    return t1('aten::clamp', '', [this, min ?? null, max ?? null]);
  }

  // --- reductions ---
  /** mean() over all elements, or over dim(s). */
  mean(dim?: number | number[], keepdim = false): Tensor {
    if (dim === undefined) return t1('aten::mean', '', [this]);
    return t1('aten::mean', 'dim', [this, Array.isArray(dim) ? dim : [dim], keepdim]);
  }
  sum(dim?: number | number[], keepdim = false): Tensor {
    if (dim === undefined) return t1('aten::sum', '', [this]);
    return t1('aten::sum', 'dim_IntList', [this, Array.isArray(dim) ? dim : [dim], keepdim]);
  }
  max(): Tensor {
    return t1('aten::max', '', [this]);
  }
  min(): Tensor {
    return t1('aten::min', '', [this]);
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return t1('aten::argmax', '', [this, dim ?? null, keepdim]);
  }
  std(): Tensor {
    return t1('aten::std', '', [this]);
  }
  /** The vector p-norm over all elements or over dim(s), as torch.Tensor.norm (torch.linalg.vector_norm). */
  norm(p = 2, dim?: number | number[], keepdim = false): Tensor {
    const dims = dim === undefined ? null : Array.isArray(dim) ? dim : [dim];
    return t1('aten::linalg_vector_norm', '', [this, p, dims, keepdim], { dtype: null });
  }

  // --- shape ---
  view(...shape: number[] | [number[]]): Tensor {
    const s = Array.isArray(shape[0]) ? (shape[0] as number[]) : (shape as number[]);
    return t1('aten::view', '', [this, checkShape(s, 'view')]);
  }
  reshape(...shape: number[] | [number[]]): Tensor {
    const s = Array.isArray(shape[0]) ? (shape[0] as number[]) : (shape as number[]);
    return t1('aten::reshape', '', [this, checkShape(s, 'reshape')]);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return t1('aten::flatten', 'using_ints', [this, startDim, endDim]);
  }
  unflatten(dim: number, sizes: number[]): Tensor {
    return t1('aten::unflatten', 'int', [this, dim, sizes]);
  }
  unsqueeze(dim: number): Tensor {
    return t1('aten::unsqueeze', '', [this, dim]);
  }
  squeeze(dim?: number): Tensor {
    return dim === undefined ? t1('aten::squeeze', '', [this]) : t1('aten::squeeze', 'dim', [this, dim]);
  }
  transpose(dim0: number, dim1: number): Tensor {
    return t1('aten::transpose', 'int', [this, dim0, dim1]);
  }
  t(): Tensor {
    return t1('aten::t', '', [this]);
  }
  permute(...dims: number[]): Tensor {
    return t1('aten::permute', '', [this, dims]);
  }
  expand(...shape: number[]): Tensor {
    return t1('aten::expand', '', [this, shape]);
  }
  /** Python's x[start:end:step] along dim. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return t1('aten::slice', 'Tensor', [this, dim, start ?? null, end ?? null, step]);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return t1('aten::narrow', '', [this, dim, start, length]);
  }
  select(dim: number, index: number): Tensor {
    return t1('aten::select', 'int', [this, dim, index]);
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return t1('aten::index_select', '', [this, dim, index]);
  }

  // --- elementwise ---
  sigmoid(): Tensor {
    return t1('aten::sigmoid', '', [this]);
  }
  tanh(): Tensor {
    return t1('aten::tanh', '', [this]);
  }
  relu(): Tensor {
    return t1('aten::relu', '', [this]);
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return t1('aten::leaky_relu', '', [this, negativeSlope]);
  }
  log(): Tensor {
    return t1('aten::log', '', [this]);
  }
  exp(): Tensor {
    return t1('aten::exp', '', [this]);
  }
  sqrt(): Tensor {
    return t1('aten::sqrt', '', [this]);
  }
  abs(): Tensor {
    return t1('aten::abs', '', [this]);
  }

  // --- comparisons (bool tensors) ---
  eq(other: TensorLike): Tensor {
    return binary('eq', this, other);
  }
  ne(other: TensorLike): Tensor {
    return binary('ne', this, other);
  }
  gt(other: TensorLike): Tensor {
    return binary('gt', this, other);
  }
  lt(other: TensorLike): Tensor {
    return binary('lt', this, other);
  }
  ge(other: TensorLike): Tensor {
    return binary('ge', this, other);
  }
  le(other: TensorLike): Tensor {
    return binary('le', this, other);
  }
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8): boolean {
    return callOp('aten::allclose', '', [this, other, rtol, atol, false]) as boolean;
  }
}
