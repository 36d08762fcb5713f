/** torch.nn.functional, camelCased. Each function calls the ATen op PyTorch's would. */
import { callOp, Tensor } from '../tensor/tensor';
import { describeValue, type OptionsReader, readOptions } from '../util/options';

export type Reduction = 'none' | 'mean' | 'sum';
const REDUCTIONS = ['none', 'mean', 'sum'] as const;

/** A loss's options: unknown keys refused; `reduction` as ATen's enum (default 'mean'). */
function lossOptions<K extends string>(fn: string, opts: unknown, keys: readonly K[]): { o: OptionsReader<K | 'reduction'>; reduction: number } {
  const o = readOptions<K | 'reduction'>(fn, opts, ['reduction', ...keys], { optional: true });
  return { o, reduction: REDUCTIONS.indexOf(o.oneOfOr('reduction', REDUCTIONS, 'mean')) };
}

function sameShape(fn: string, input: Tensor, target: Tensor): void {
  if (!(input instanceof Tensor) || !(target instanceof Tensor)) throw new TypeError(`${fn}: input and target must be Tensors`);
  const a = input.shape;
  const b = target.shape;
  if (a.join() !== b.join()) {
    throw new Error(
      `${fn}: Using a target size ([${b.join(', ')}]) that is different to the input size ([${a.join(', ')}]) is deprecated. Please ensure they have the same size.`,
    );
  }
}

export function linear(input: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return callOp('aten::linear', '', [input, weight, bias ?? null]) as Tensor;
}
export const relu = (x: Tensor) => callOp('aten::relu', '', [x]) as Tensor;
export const leakyRelu = (x: Tensor, negativeSlope = 0.01) => callOp('aten::leaky_relu', '', [x, negativeSlope]) as Tensor;
export const sigmoid = (x: Tensor) => callOp('aten::sigmoid', '', [x]) as Tensor;
export const tanh = (x: Tensor) => callOp('aten::tanh', '', [x]) as Tensor;
export const softplus = (x: Tensor, beta = 1, threshold = 20) => callOp('aten::softplus', '', [x, beta, threshold]) as Tensor;
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout probability has to be between 0 and 1, but got ${p}`);
  return callOp('aten::dropout', '', [x, p, training]) as Tensor;
}
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight: Tensor | null,
  bias: Tensor | null,
  training: boolean,
  momentum: number,
  eps: number,
): Tensor {
  return callOp('aten::batch_norm', '', [x, weight, bias, runningMean, runningVar, training, momentum, eps, true]) as Tensor;
}

type Pair = number | [number, number];
const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : v);
// The values themselves are checked by the native op reader (each named by its argument).
const CONV_KEYS = ['stride', 'padding', 'dilation', 'groups'] as const;
const CONV_T_KEYS = ['stride', 'padding', 'outputPadding', 'groups', 'dilation'] as const;

export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: { stride?: Pair; padding?: Pair | 'same' | 'valid'; dilation?: Pair; groups?: number } = {},
): Tensor {
  readOptions('conv2d', opts, CONV_KEYS, { optional: true });
  opts ??= {};
  const padding = opts.padding ?? 0;
  // a string padding has its own overload, aten::conv2d.padding, as in F.conv2d
  return callOp('aten::conv2d', typeof padding === 'string' ? 'padding' : '', [
    input,
    weight,
    bias ?? null,
    pair(opts.stride ?? 1),
    typeof padding === 'string' ? padding : pair(padding),
    pair(opts.dilation ?? 1),
    opts.groups ?? 1,
  ]) as Tensor;
}
export function convTranspose2d(
  input: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  opts: { stride?: Pair; padding?: Pair; outputPadding?: Pair; groups?: number; dilation?: Pair } = {},
): Tensor {
  readOptions('convTranspose2d', opts, CONV_T_KEYS, { optional: true });
  opts ??= {};
  return callOp('aten::conv_transpose2d', 'input', [
    input,
    weight,
    bias ?? null,
    pair(opts.stride ?? 1),
    pair(opts.padding ?? 0),
    pair(opts.outputPadding ?? 0),
    opts.groups ?? 1,
    pair(opts.dilation ?? 1),
  ]) as Tensor;
}
/** As F.one_hot: int64 [..., numClasses]; numClasses -1 takes the largest index + 1. */
export function oneHot(input: Tensor, numClasses = -1): Tensor {
  if (!Number.isInteger(numClasses) || numClasses < -1)
    throw new TypeError(`oneHot numClasses: expected a positive integer or -1, got ${JSON.stringify(numClasses)}`);
  return callOp('aten::one_hot', '', [input, numClasses]) as Tensor;
}
/** Rows of weight by index; paddingIdx's row gets no gradient, as F.embedding. */
export function embedding(input: Tensor, weight: Tensor, paddingIdx: number | null = null): Tensor {
  return callOp('aten::embedding', '', [weight, input, paddingIdx ?? -1, false, false]) as Tensor;
}

export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: { reduction?: Reduction; weight?: Tensor; posWeight?: Tensor } = {}): Tensor {
  const { o, reduction } = lossOptions('binaryCrossEntropyWithLogits', opts, ['weight', 'posWeight'] as const);
  sameShape('binaryCrossEntropyWithLogits', input, target);
  return callOp('aten::binary_cross_entropy_with_logits', '', [input, target, o.get('weight') ?? null, o.get('posWeight') ?? null, reduction]) as Tensor;
}
export function binaryCrossEntropy(input: Tensor, target: Tensor, opts: { reduction?: Reduction; weight?: Tensor } = {}): Tensor {
  const { o, reduction } = lossOptions('binaryCrossEntropy', opts, ['weight'] as const);
  sameShape('binaryCrossEntropy', input, target);
  return callOp('aten::binary_cross_entropy', '', [input, target, o.get('weight') ?? null, reduction]) as Tensor;
}
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const { reduction } = lossOptions('mseLoss', opts, [] as const);
  return callOp('aten::mse_loss', '', [input, target, reduction]) as Tensor;
}
export const softmax = (x: Tensor, dim: number) => callOp('aten::softmax', 'int', [x, dim]) as Tensor;
export const logSoftmax = (x: Tensor, dim: number) => callOp('aten::log_softmax', 'int', [x, dim]) as Tensor;
/** Class indices `target` (int64, [N]) against logits `input` ([N, C]), as torch's cross_entropy. */
export function crossEntropy(
  input: Tensor,
  target: Tensor,
  opts: { reduction?: Reduction; weight?: Tensor; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  const { o, reduction } = lossOptions('crossEntropy', opts, ['weight', 'ignoreIndex', 'labelSmoothing'] as const);
  if (!(input instanceof Tensor) || !(target instanceof Tensor)) throw new TypeError('crossEntropy: input and target must be Tensors');
  const ignoreIndex = o.integerOr('ignoreIndex', -100);
  const labelSmoothing = o.numberOr('labelSmoothing', 0, { min: 0, max: 1 });
  return callOp('aten::cross_entropy_loss', '', [input, target, o.get('weight') ?? null, reduction, ignoreIndex, labelSmoothing]) as Tensor;
}
/** Max over kernelSize windows (stride defaults to kernelSize, as in torch). */
export function maxPool2d(
  x: Tensor,
  kernelSize: number | [number, number],
  stride?: number | [number, number],
  padding: number | [number, number] = 0,
): Tensor {
  const pair = (v: number | [number, number]) => (typeof v === 'number' ? [v, v] : v);
  return callOp('aten::max_pool2d', '', [x, pair(kernelSize), pair(stride ?? kernelSize), pair(padding), [1, 1], false]) as Tensor;
}
/** input / max(||input||_p over dim, eps), as F.normalize (the same ops: vector norm, clamp_min, div). */
export function normalize(input: Tensor, opts: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const o = readOptions('normalize', opts, ['p', 'dim', 'eps'], { optional: true });
  if (!(input instanceof Tensor)) throw new TypeError(`normalize: expected a Tensor input, got ${describeValue(input)}`);
  const denom = input.norm(o.numberOr('p', 2), o.integerOr('dim', 1), true);
  return input.div(callOp('aten::clamp_min', '', [denom, o.numberOr('eps', 1e-12, { min: 0 })]) as Tensor);
}
