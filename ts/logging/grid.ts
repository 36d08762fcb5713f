import { byteMapper, type PixelRange } from '../util/pixels';
import { savePng, type PixelImage } from './png';

/** Value range of the input images: a float PixelRange, or '[0,255]' (bytes, always). */
export type ImageRange = PixelRange | '[0,255]';

/**
 * A batch of images as a flat typed array in row-major (C-contiguous) order, with shape
 * [N, H, W] (grayscale) or [N, C, H, W] with C = 1 (grayscale) or 3 (RGB).
 */
export interface ImageBatch {
  data: Float32Array | Float64Array | Uint8Array | Uint8ClampedArray;
  shape: readonly number[];
}

export interface GridOptions {
  /** Images per row (torchvision's `nrow`). Default 8. */
  nrow?: number;
  /** Pixels of padding around and between images. Default 2. */
  padding?: number;
  /**
   * Value range of the input: '[-1,1]' (tanh generator output; -1 -> 0, 1 -> 255), '[0,1]' or
   * '[0,255]'. Default '[0,1]' for float arrays and '[0,255]' for byte arrays. Values outside
   * the range are clamped; NaN becomes 0.
   */
  range?: ImageRange;
  /** Padding intensity in output space [0,1] (torchvision's `pad_value` after normalization). Default 0. */
  padValue?: number;
  /**
   * Output channels. Default: 1 for grayscale input, 3 for RGB input. Grayscale input can be
   * widened to RGB (as torchvision does) with 3; RGB input cannot be narrowed.
   */
  channels?: 1 | 3;
}

/** A grid image: 8-bit pixels, HWC interleaved, 1 (gray) or 3 (RGB) channels. */
export interface GridImage extends PixelImage {
  channels: 1 | 3;
}

function toByteMapper(range: ImageRange): (v: number) => number {
  if (range !== '[0,255]') return byteMapper(range); // torchvision's save_image, as everywhere in the package
  return (v: number) => {
    const x = Math.floor(v + 0.5);
    return x > 255 ? 255 : Math.max(x, 0); // NaN fails both tests and becomes 0
  };
}

/**
 * Lays a batch of images out in a grid like torchvision.utils.make_grid and converts it to 8-bit
 * pixels like torchvision.utils.save_image: `min(nrow, N)` columns, `ceil(N / columns)` rows, each
 * cell `padding` pixels apart and from the border, so the grid is
 * `columns * (W + padding) + padding` wide and `rows * (H + padding) + padding` high (64 MNIST
 * images, nrow 8, padding 2: 242 x 242). Unused cells of the last row keep `padValue`. As in
 * torchvision, a batch of one image is returned without padding.
 */
export function makeGrid(images: ImageBatch, opts: GridOptions = {}): GridImage {
  const { data, shape } = images;
  let n: number, c: number, h: number, w: number;
  if (shape.length === 3) {
    [n, h, w] = shape as [number, number, number];
    c = 1;
  } else if (shape.length === 4) [n, c, h, w] = shape as [number, number, number, number];
  else throw new RangeError(`makeGrid: shape must be [N, H, W] or [N, C, H, W], got [${shape.join(', ')}]`);
  if (![n, c, h, w].every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`makeGrid: dimensions must be positive integers, got [${shape.join(', ')}]`);
  }
  if (c !== 1 && c !== 3) throw new RangeError(`makeGrid: channels must be 1 or 3, got ${c}`);
  if (data.length !== n * c * h * w) {
    throw new RangeError(`makeGrid: shape [${shape.join(', ')}] needs ${n * c * h * w} values, got ${data.length}`);
  }
  const isBytes = data.BYTES_PER_ELEMENT === 1; // Uint8Array or Uint8ClampedArray
  const range: ImageRange = opts.range ?? (isBytes ? '[0,255]' : '[0,1]');
  if (range !== '[-1,1]' && range !== '[0,1]' && range !== '[0,255]') {
    throw new RangeError(`makeGrid: range must be '[-1,1]', '[0,1]' or '[0,255]', got ${String(range)}`);
  }
  if (isBytes && range !== '[0,255]') throw new RangeError(`makeGrid: byte images must have range '[0,255]'`);
  const outC = opts.channels ?? c;
  if (outC !== 1 && outC !== 3) throw new RangeError(`makeGrid: channels must be 1 or 3, got ${String(outC)}`);
  if (outC < c) throw new RangeError('makeGrid: RGB images cannot be written as a grayscale grid');

  const nrow = opts.nrow ?? 8;
  if (!Number.isInteger(nrow) || nrow < 1) throw new RangeError(`makeGrid: nrow must be a positive integer, got ${nrow}`);
  let padding = opts.padding ?? 2;
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`makeGrid: padding must be a non-negative integer, got ${padding}`);
  }
  if (n === 1) padding = 0; // torchvision returns a single image unpadded
  const toByte = toByteMapper(range);
  const padByte = toByteMapper('[0,1]')(opts.padValue ?? 0);

  const cols = Math.min(nrow, n);
  const rows = Math.ceil(n / cols);
  const width = cols * (w + padding) + padding;
  const height = rows * (h + padding) + padding;
  const pixels = new Uint8Array(width * height * outC).fill(padByte);
  const plane = h * w;
  for (let k = 0; k < n; k++) {
    const x0 = (k % cols) * (w + padding) + padding;
    const y0 = Math.floor(k / cols) * (h + padding) + padding;
    const base = k * c * plane;
    for (let y = 0; y < h; y++) {
      let out = ((y0 + y) * width + x0) * outC;
      const row = base + y * w;
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < outC; ch++) {
          // grayscale widened to RGB repeats the single plane
          pixels[out + ch] = toByte(data[row + (c === 1 ? 0 : ch) * plane + x]);
        }
        out += outC;
      }
    }
  }
  return { pixels, width, height, channels: outC };
}

/** makeGrid + encode PNG + atomic write (temporary file + rename). Returns the grid that was written. */
export function saveImageGrid(file: string, images: ImageBatch, opts: GridOptions = {}): GridImage {
  const grid = makeGrid(images, opts);
  savePng(file, grid);
  return grid;
}
