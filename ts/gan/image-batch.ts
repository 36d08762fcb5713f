/**
 * A batch as the models take it: uint8 pixels become float32 in the preset's range by the package's
 * one pixel convention (util/pixels.ts: x / 255, then (x - 0.5) / 0.5 for '[-1,1]', as torchvision's
 * ToTensor + Normalize; the native trainEpoch does the same ops), flattened to [N, features] for
 * MLPs and as [N, C, H, W] for convolutional discriminators.
 */
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { checkPixelRange, type PixelRange } from '../util/pixels';
import { type ConvShape } from './presets/dcgan';
import { isConvolutional, type Preset } from './presets';

/**
 * `batch` (uint8 pixels, or float images already in `range`) as float32 on `device`: [N, features]
 * (`image` null: an MLP) or [N, C, H, W] for `image`'s channels; may return `batch` itself.
 */
export function toModelInput(batch: Tensor, range: PixelRange, device: Device, image: ConvShape | null = null): Tensor {
  checkPixelRange(range, 'normalize');
  return torch.scope(() => {
    let x = batch.device.startsWith(device) ? batch : batch.to(device);
    if (x.dtype === 'uint8') {
      x = x.to('float32').div(255);
      if (range === '[-1,1]') x = x.sub(0.5).div(0.5);
    }
    if (!image) return x.ndim === 2 ? x : x.flatten(1);
    const want = [x.shape[0], image.channels, image.size, image.size];
    if (x.numel() !== want.reduce((a, b) => a * b, 1) || (x.ndim !== 3 && x.ndim !== 4))
      throw new RangeError(`batch: expected images of shape [N, ${want.slice(1).join(', ')}] for the convolutional discriminator, got [${x.shape.join(', ')}]`);
    return x.ndim === 4 ? x : x.reshape(want);
  });
}

/** Runs `fn` on `batch` as `preset`'s models take it (toModelInput), freeing the copy afterwards. */
export function withModelInput<T>(batch: Tensor, preset: Preset, device: Device, fn: (x: Tensor) => T): T {
  const x = toModelInput(batch, preset.normalize, device, isConvolutional(preset) ? preset.image : null);
  try {
    return fn(x);
  } finally {
    if (x !== batch) x.dispose();
  }
}
