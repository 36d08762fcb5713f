/**
 * A batch as the models take it: uint8 pixels become float32 in the preset's range by the package's
 * one pixel convention (util/pixels.ts: x / 255, then (x - 0.5) / 0.5 for '[-1,1]', as torchvision's
 * ToTensor + Normalize; the native trainEpoch does the same ops), flattened to [N, 784] for MLPs.
 */
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { checkPixelRange, type PixelRange } from '../util/pixels';
import { IMAGE_SIDE } from './presets';

/** `batch` (uint8 pixels, or float images already in `range`) as float32 [N, 784] on `device`; may return `batch` itself. */
export function toModelInput(batch: Tensor, range: PixelRange, device: Device): Tensor {
  checkPixelRange(range, 'normalize');
  return torch.scope(() => {
    let x = batch.device.startsWith(device) ? batch : batch.to(device);
    if (x.dtype === 'uint8') {
      x = x.to('float32').div(255);
      if (range === '[-1,1]') x = x.sub(0.5).div(0.5);
    }
    return x.ndim === 2 ? x : x.reshape([x.shape[0], IMAGE_SIDE * IMAGE_SIDE]);
  });
}
