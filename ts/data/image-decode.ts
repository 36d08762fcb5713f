/**
 * Decoding one image file with sharp (libvips): read bounded by its fstat size, opened non-blocking,
 * scaled so its shorter side is `size`, centre-cropped, and written channel-first.
 */
import * as fs from 'node:fs';
import { DataError, describeError } from './errors';
import { type Skip, notAFile, tooLarge } from './image-scan';

export type Sharp = typeof import('sharp').default;
let sharpLoaded: Promise<Sharp> | undefined;

/** sharp is loaded on first use, so that MNIST users never load libvips and a broken install only fails here. */
export function loadSharp(): Promise<Sharp> {
  sharpLoaded ??= import('sharp').then(
    (m) => m.default,
    (err: unknown) => {
      sharpLoaded = undefined;
      throw new DataError(
        'DECODER_UNAVAILABLE',
        `ImageFolder needs the image decoder sharp, which could not be loaded (${describeError(err)}); reinstall it with \`npm install sharp\``,
        { cause: err },
      );
    },
  );
  return sharpLoaded;
}

export type Decoded = { pixels: Uint8Array; channels: 1 | 3 } | Skip;
export const DONE: Decoded = { reason: 'written', kind: 'unreadable' };

// non-blocking: a FIFO put in an image's place after the scan opens at once (and is refused by fstat)
// instead of waiting for a writer; no controlling terminal from a tty device
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOCTTY ?? 0);

/** The bytes of a regular file of at most `max` bytes (by its fstat size, read up to that size), or why not. */
async function readBounded(file: string, max: number): Promise<Buffer | Skip> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, OPEN_FLAGS);
  } catch (err) {
    return { reason: `cannot read file (${describeError(err)})`, kind: 'unreadable' };
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return notAFile(st);
    if (st.size > max) return tooLarge(st.size, max);
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    while (n < buf.length) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break; // shrank since fstat: what is there
      n += bytesRead;
    }
    return buf.subarray(0, n);
  } catch (err) {
    return { reason: `cannot read file (${describeError(err)})`, kind: 'unreadable' };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** One file as size*size*channels interleaved uint8 (channels: as asked, or the file's own for 'auto'); never throws. */
export async function decodeFile(sharp: Sharp, file: string, size: number, want: 1 | 3 | 'auto', maxBytes: number): Promise<Decoded> {
  const bytes = await readBounded(file, maxBytes);
  if (!Buffer.isBuffer(bytes)) return bytes;
  try {
    const img = sharp(bytes);
    let c: 1 | 3;
    if (want === 'auto') {
      // grayscale by the file's colour type (gray or gray+alpha), not by its pixel values
      const meta = await img.metadata();
      c = (meta.channels ?? 3) - (meta.hasAlpha ? 1 : 0) === 1 ? 1 : 3;
    } else c = want;
    img.flatten({ background: '#000000' }).resize(size, size, { fit: 'cover', position: 'centre' });
    if (c === 1) img.grayscale();
    else img.toColourspace('srgb');
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== c || info.width !== size || info.height !== size || data.length !== size * size * c) {
      return {
        reason: `decoded to ${info.width}x${info.height} with ${info.channels} channels (${data.length} bytes), expected ${size}x${size} with ${c}`,
        kind: 'undecodable',
      };
    }
    return { pixels: data, channels: c };
  } catch (err) {
    // libvips reports one problem per line, often repeated
    const lines = [
      ...new Set(
        describeError(err)
          .split('\n')
          // a line may end in ':' when libvips' detail was taken by a concurrent decode
          .map((l) => l.trim().replace(/:$/, '')),
      ),
    ].filter((l) => l !== '');
    return { reason: `cannot decode: ${lines.join('; ')}`, kind: 'undecodable' };
  }
}

/** Writes one image into `out` (c*plane bytes, channel-first) from interleaved `src` with `srcC` channels. */
export function writeChannelFirst(out: Uint8Array, src: Uint8Array, srcC: 1 | 3, c: 1 | 3, plane: number): void {
  if (srcC === 1) {
    for (let ch = 0; ch < c; ch++) out.set(src, ch * plane); // gray into RGB: the same value in R, G and B
    return;
  }
  for (let p = 0, q = 0; p < plane; p++, q += 3) {
    out[p] = src[q]!;
    out[plane + p] = src[q + 1]!;
    out[2 * plane + p] = src[q + 2]!;
  }
}
