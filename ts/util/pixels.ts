/**
 * The package's one pixel convention. uint8 pixels <-> float32 values, with the same float32 arithmetic, in the same order, as
 * PyTorch/torchvision, so results match bit for bit.
 *
 * toFloat32, for each pixel x in 0..255 (every step rounded to float32, as PyTorch does on float32
 * tensors):
 *   '[0,1]':  y = x / 255                       torchvision ToTensor(): img.to(float32).div(255)
 *   '[-1,1]': y = ((x / 255) - 0.5) / 0.5       ToTensor() then Normalize((0.5,), (0.5,)):
 *                                               tensor.sub_(mean).div_(std)
 * (For all 256 inputs the '[-1,1]' result also equals float32 x / 127.5 - 1; the PyTorch order is
 * what is implemented.) Since x takes only 256 values, a 256-entry table is computed once.
 *
 * toUint8 is the inverse used for saving images, torchvision save_image(normalize=True,
 * value_range=range): clamp to the range, (v - low) / (high - low), then
 * trunc(clamp(v * 255 + 0.5, 0, 255)). NaN maps to 0.
 */

/** The value range of float images: '[-1,1]' (Tanh generators, Normalize(0.5, 0.5)) or '[0,1]' (Sigmoid, ToTensor). */
export type PixelRange = '[-1,1]' | '[0,1]';
export const PIXEL_RANGES: readonly PixelRange[] = Object.freeze(['[-1,1]', '[0,1]']);

/** Throws a RangeError naming `what` and the bad value unless `range` is a PixelRange. */
export function checkPixelRange(range: unknown, what = 'pixel range'): PixelRange {
  if (!PIXEL_RANGES.includes(range as PixelRange)) {
    throw new RangeError(`${what}: expected '[-1,1]' or '[0,1]', got ${JSON.stringify(range)}`);
  }
  return range as PixelRange;
}

const tables = new Map<PixelRange, Float32Array>();

function table(range: PixelRange): Float32Array {
  let t = tables.get(range);
  if (!t) {
    const f = Math.fround;
    t = new Float32Array(256);
    for (let x = 0; x < 256; x++) {
      const unit = f(x / 255); // float32 division, correctly rounded (double rounding is exact here)
      if (range === '[0,1]') t[x] = unit;
      else if (range === '[-1,1]') t[x] = f(f(unit - 0.5) / 0.5);
      else checkPixelRange(range);
    }
    tables.set(range, t);
  }
  return t;
}

/**
 * Converts uint8 pixels to float32 in `range` (see the formulas above). Writes into `out` when
 * given (its length must equal `images.length`), else into a new array; returns it.
 */
export function toFloat32(images: Uint8Array, range: PixelRange, out?: Float32Array): Float32Array {
  const t = table(range);
  const n = images.length;
  if (out !== undefined && out.length !== n) {
    throw new RangeError(`toFloat32: out has length ${out.length}, expected ${n} (one float per pixel)`);
  }
  const y = out ?? new Float32Array(n);
  for (let i = 0; i < n; i++) y[i] = t[images[i]!]!;
  return y;
}

/**
 * Converts float32 values in `range` back to uint8 pixels the way torchvision's save_image does
 * (see above). Writes into `out` when given, else into a new array; returns it.
 */
export function toUint8(values: Float32Array | Float64Array, range: PixelRange, out?: Uint8Array): Uint8Array {
  const n = values.length;
  if (out !== undefined && out.length !== n) {
    throw new RangeError(`toUint8: out has length ${out.length}, expected ${n}`);
  }
  const toByte = byteMapper(range);
  const y = out ?? new Uint8Array(n);
  for (let i = 0; i < n; i++) y[i] = toByte(values[i]!);
  return y;
}

/** One value in `range` to its pixel byte, as toUint8 (for callers that lay pixels out themselves). */
export function byteMapper(range: PixelRange): (v: number) => number {
  const [low, high] = checkPixelRange(range) === '[-1,1]' ? [-1, 1] : [0, 1];
  const f = Math.fround;
  const span = f(high - low);
  return (value: number) => {
    let v = f(value);
    if (!(v >= low)) v = Number.isNaN(v) ? NaN : low;
    else if (v > high) v = high;
    v = f(f(v - low) / span);
    v = f(f(v * 255) + 0.5);
    return v >= 255 ? 255 : v > 0 ? Math.trunc(v) : 0;
  };
}
