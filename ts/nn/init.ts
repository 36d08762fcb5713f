/**
 * torch.nn.init, camelCased: the same arithmetic, drawing from the global generator under no_grad, so
 * after the same manualSeed the values equal PyTorch's bit for bit.
 */
import { Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'conv_transpose1d'
  | 'conv_transpose2d'
  | 'conv_transpose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'selu';

function checkTensor(t: unknown, fn: string): Tensor {
  if (!(t instanceof Tensor)) throw new TypeError(`nn.init.${fn}: expected a Tensor, got ${t === null ? 'null' : typeof t}`);
  return t;
}
function checkNumber(v: unknown, fn: string, what: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new TypeError(`nn.init.${fn}: ${what} must be a number, got ${JSON.stringify(v)}`);
  return v;
}

/** As torch.nn.init.calculate_gain. */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'conv_transpose1d':
    case 'conv_transpose2d':
    case 'conv_transpose3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5.0 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      const slope = param ?? 0.01;
      checkNumber(slope, 'calculateGain', 'negative_slope');
      return Math.sqrt(2.0 / (1 + slope ** 2));
    }
    case 'selu':
      return 3.0 / 4;
    default:
      throw new Error(`Unsupported nonlinearity ${JSON.stringify(nonlinearity)}`);
  }
}

/**
 * As torch.nn.init._calculate_fan_in_and_fan_out: dim 1 is the input maps, dim 0 the output maps, the
 * rest the receptive field. (So for a transposed conv's [in, out/groups, kh, kw] weight, fan_in comes
 * from out/groups, as in PyTorch.)
 */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  const s = checkTensor(t, 'calculateFanInAndFanOut').shape;
  if (s.length < 2) throw new Error(`Fan in and fan out can not be computed for tensor with fewer than 2 dimensions (got shape [${s.join(', ')}])`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1] * receptive, s[0] * receptive];
}

export function uniform_(t: Tensor, a = 0, b = 1): Tensor {
  checkTensor(t, 'uniform_');
  checkNumber(a, 'uniform_', 'a');
  checkNumber(b, 'uniform_', 'b');
  if (a > b) throw new RangeError(`nn.init.uniform_: expects a <= b, but got a=${a} and b=${b}`);
  return torch.noGrad(() => t.uniform_(a, b));
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  checkTensor(t, 'normal_');
  checkNumber(mean, 'normal_', 'mean');
  if (checkNumber(std, 'normal_', 'std') < 0) throw new RangeError(`nn.init.normal_: expects std >= 0.0, but found std ${std}`);
  return torch.noGrad(() => t.normal_(mean, std));
}
export function constant_(t: Tensor, val: number): Tensor {
  checkTensor(t, 'constant_');
  checkNumber(val, 'constant_', 'val');
  return torch.noGrad(() => t.fill_(val));
}
export const ones_ = (t: Tensor): Tensor => constant_(checkTensor(t, 'ones_'), 1);
export const zeros_ = (t: Tensor): Tensor => torch.noGrad(() => checkTensor(t, 'zeros_').zero_());

/** U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)), as torch.nn.init.xavier_uniform_. */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(checkTensor(t, 'xavierUniform_'));
  const std = checkNumber(gain, 'xavierUniform_', 'gain') * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std; // the same two steps as PyTorch, so the rounding is the same
  return torch.noGrad(() => t.uniform_(-a, a));
}

/** U(-b, b) with b = gain * sqrt(3 / fan), as torch.nn.init.kaiming_uniform_. */
export function kaimingUniform_(t: Tensor, a = 0, mode: 'fan_in' | 'fan_out' = 'fan_in', nonlinearity: Nonlinearity = 'leaky_relu'): Tensor {
  checkTensor(t, 'kaimingUniform_');
  if (mode !== 'fan_in' && mode !== 'fan_out')
    throw new TypeError(`nn.init.kaimingUniform_: mode ${JSON.stringify(mode)} not supported, please use one of fan_in, fan_out`);
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const fan = mode === 'fan_in' ? fanIn : fanOut;
  const gain = calculateGain(nonlinearity, checkNumber(a, 'kaimingUniform_', 'a'));
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3.0) * std;
  return torch.noGrad(() => t.uniform_(-bound, bound));
}
