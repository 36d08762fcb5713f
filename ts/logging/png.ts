import { PNG, type ColorType } from 'pngjs';
import { writeFileAtomic } from '../util/fs';

/** Channels of an interleaved 8-bit pixel buffer: gray, gray+alpha, RGB, RGBA. */
export type PixelChannels = 1 | 2 | 3 | 4;

/** An 8-bit image, rows top to bottom, channels interleaved (HWC). */
export interface PixelImage {
  pixels: Uint8Array;
  width: number;
  height: number;
  channels: PixelChannels;
}

const COLOR_TYPE: Record<PixelChannels, ColorType> = { 1: 0, 2: 4, 3: 2, 4: 6 };

/**
 * Encodes an 8-bit interleaved pixel buffer (`width * height * channels` bytes) as PNG with pngjs.
 * The PNG keeps the channel layout: gray (color type 0), gray+alpha (4), RGB (2) or RGBA (6).
 */
export function encodePng(pixels: Uint8Array, width: number, height: number, channels: PixelChannels): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`encodePng: width and height must be positive integers, got ${width}x${height}`);
  }
  if (!(channels in COLOR_TYPE)) throw new RangeError(`encodePng: channels must be 1, 2, 3 or 4, got ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new RangeError(`encodePng: expected ${width}*${height}*${channels} = ${width * height * channels} bytes, got ${pixels.length}`);
  }
  const colorType = COLOR_TYPE[channels];
  const data = Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength);
  // pngjs's packer reads only width, height and data from the image it is given.
  const image = { width, height, data } as unknown as PNG;
  return PNG.sync.write(image, {
    colorType,
    inputColorType: colorType,
    inputHasAlpha: channels === 2 || channels === 4,
    bitDepth: 8,
    deflateLevel: 6,
  });
}

/** Encodes a {@link PixelImage} as PNG. */
export function encodePixelImage(image: PixelImage): Buffer {
  return encodePng(image.pixels, image.width, image.height, image.channels);
}

/** Encodes `image` as PNG and writes it to `file` atomically (temporary file + rename). */
export function savePng(file: string, image: PixelImage): void {
  writeFileAtomic(file, encodePixelImage(image));
}

/** Width, height and channel count from a PNG's IHDR chunk (no decoding). */
export interface PngInfo {
  width: number;
  height: number;
  /** 1 gray, 2 gray+alpha, 3 RGB or palette, 4 RGBA. */
  channels: PixelChannels;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Reads a PNG's size and channel count from its header; throws if `bytes` is not a PNG. */
export function pngInfo(bytes: Uint8Array): PngInfo {
  const ok = bytes.length >= 33 && PNG_SIGNATURE.every((b, i) => bytes[i] === b) && String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) === 'IHDR';
  if (!ok) throw new Error('not a PNG image (bad signature or missing IHDR)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const colorType = bytes[25];
  const channels: PixelChannels = colorType === 0 ? 1 : colorType === 4 ? 2 : colorType === 6 ? 4 : 3;
  return { width, height, channels };
}
