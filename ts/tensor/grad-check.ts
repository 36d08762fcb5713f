/** `x.grad = g` checked as PyTorch checks it, in its words: same size, dtype and device. */
import { type Device, type DType } from './dtype';

interface Meta {
  shape: number[];
  dtype: DType;
  device: Device;
}

/** Throws PyTorch's error when gradient `g` does not fit tensor `t`. */
export function checkGradFits(g: Meta, t: Meta): void {
  const [gs, ts] = [g.shape, t.shape];
  if (gs.join() !== ts.join())
    throw new Error(
      `attempting to assign a gradient of size '[${gs.join(', ')}]' to a tensor of size '[${ts.join(', ')}]'. Please ensure that the gradient and the tensor are the same size`,
    );
  if (g.dtype !== t.dtype)
    throw new Error(
      `attempting to assign a gradient with dtype '${g.dtype}' to a tensor with dtype '${t.dtype}'. Please ensure that the gradient and the tensor have the same dtype`,
    );
  if (g.device === t.device) return;
  const [gType, gIndex] = g.device.split(':');
  const [tType, tIndex] = t.device.split(':');
  throw new Error(
    gType !== tType
      ? `attempting to assign a gradient with device type '${gType}' to a tensor with device type '${tType}'. Please ensure that the gradient and the tensor are on the same device`
      : `attempting to assign a gradient located on device with index '${gIndex}' to a tensor located on device with index '${tIndex}'. Please ensure that the gradient and the tensor are on the same device`,
  );
}
