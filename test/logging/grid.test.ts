import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { makeGrid, saveImageGrid } from '../../ts/logging/grid';
import { encodePng, pngInfo } from '../../ts/logging/png';
import { toUint8 } from '../../ts/util/pixels';
import { tmpDir } from './tmp';

/** 64 MNIST-size images in [-1,1]; image k has value v(k, y, x) (distinct per image and pixel). */
function mnistLike(n = 64, h = 28, w = 28): Float32Array {
  const data = new Float32Array(n * h * w);
  for (let k = 0; k < n; k++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[(k * h + y) * w + x] = v(k, y, x);
  return data;
}
function v(k: number, y: number, x: number): number {
  return ((k * 7 + y * 3 + x * 5) % 101) / 50 - 1; // in [-1, 1]
}
// The package's one pixel convention (util/pixels.ts, proven against torchvision's save_image there).
const toByte = (u: number) => toUint8(Float32Array.of(u), '[-1,1]')[0];

describe('makeGrid / saveImageGrid', () => {
  it('writes 64 28x28 images as a 242x242 PNG (8 per row, padding 2) with the right pixels', () => {
    const dir = tmpDir();
    const file = path.join(dir, 'samples', 'epoch-001.png');
    const grid = saveImageGrid(file, { data: mnistLike(), shape: [64, 1, 28, 28] }, { range: '[-1,1]', padValue: 0.5 });
    expect([grid.width, grid.height, grid.channels]).toEqual([242, 242, 1]);
    expect(fs.readdirSync(path.dirname(file))).toEqual(['epoch-001.png']); // no temp file left
    const png = PNG.sync.read(fs.readFileSync(file));
    expect([png.width, png.height]).toEqual([242, 242]);
    expect(pngInfo(fs.readFileSync(file))).toEqual({ width: 242, height: 242, channels: 1 });
    const at = (x: number, y: number) => png.data[(y * 242 + x) * 4];
    // padding: border, between cells, bottom-right corner (padValue 0.5 -> floor(127.5 + 0.5) = 128)
    for (const [x, y] of [
      [0, 0],
      [1, 1],
      [241, 241],
      [30, 100],
      [31, 100],
      [100, 30],
      [100, 61],
      [240, 5],
    ]) {
      expect(at(x, y)).toBe(128);
    }
    // image k at column k % 8, row floor(k / 8), top-left corner at (2 + 30 * col, 2 + 30 * row)
    for (const k of [0, 1, 9, 27, 63]) {
      const x0 = 2 + 30 * (k % 8);
      const y0 = 2 + 30 * Math.floor(k / 8);
      for (const [y, x] of [
        [0, 0],
        [0, 27],
        [27, 0],
        [13, 17],
        [27, 27],
      ]) {
        expect(at(x0 + x, y0 + y)).toBe(toByte(Math.fround(v(k, y, x))));
      }
    }
    // decoded gray PNG has R = G = B and opaque alpha
    expect(png.data[(50 * 242 + 50) * 4 + 1]).toBe(at(50, 50));
    expect(png.data[(50 * 242 + 50) * 4 + 3]).toBe(255);
  });

  it('maps [-1,1] to 0..255 and [0,1] to 0..255 with clamping', () => {
    const vals = new Float32Array([-1, 1, 0, -2, 3, NaN, 0.5, -0.5]);
    const g = makeGrid({ data: vals, shape: [1, 1, 8] }, { range: '[-1,1]' });
    expect([g.width, g.height]).toEqual([8, 1]); // a single image is not padded (torchvision)
    expect(Array.from(g.pixels)).toEqual([0, 255, 128, 0, 255, 0, 191, 64]);
    const g01 = makeGrid({ data: new Float64Array([0, 1, 0.5, 0.25, -0.1, 1.2]), shape: [1, 2, 3] });
    expect(Array.from(g01.pixels)).toEqual([0, 255, 128, 64, 0, 255]);
    const gb = makeGrid({ data: new Uint8Array([0, 17, 255, 200]), shape: [1, 2, 2] });
    expect(Array.from(gb.pixels)).toEqual([0, 17, 255, 200]);
  });

  it('fills the unused cells of the last row with padValue and keeps torchvision sizes', () => {
    // 5 images of 2x3, nrow 3 -> 3 columns x 2 rows: width 3*(3+1)+1 = 13, height 2*(2+1)+1 = 7
    const data = new Float32Array(5 * 2 * 3).fill(1);
    const g = makeGrid({ data, shape: [5, 2, 3] }, { nrow: 3, padding: 1, padValue: 0 });
    expect([g.width, g.height]).toEqual([13, 7]);
    const px = (x: number, y: number) => g.pixels[y * 13 + x];
    expect(px(1, 1)).toBe(255); // image 0
    expect(px(5 + 2, 4 + 1)).toBe(255); // image 4: column 1, row 1
    expect(px(9, 4)).toBe(0); // the empty 6th cell
    expect(px(0, 0)).toBe(0);
    expect(g.pixels.reduce((s, b) => s + (b === 255 ? 1 : 0), 0)).toBe(5 * 6);
  });

  it('widens grayscale to RGB on request and keeps RGB channels apart', () => {
    const gray = makeGrid({ data: new Float32Array([0, 1]), shape: [1, 1, 1, 2] }, { channels: 3 });
    expect(gray.channels).toBe(3);
    expect(Array.from(gray.pixels)).toEqual([0, 0, 0, 255, 255, 255]);
    // 2 RGB images of 1x1: red and blue, padding 1 -> 5x3
    const rgb = makeGrid({ data: new Float32Array([1, 0, 0, 0, 0, 1]), shape: [2, 3, 1, 1] }, { padding: 1, padValue: 1 });
    expect([rgb.width, rgb.height, rgb.channels]).toEqual([5, 3, 3]);
    const p = (x: number, y: number) => Array.from(rgb.pixels.subarray((y * 5 + x) * 3, (y * 5 + x) * 3 + 3));
    expect(p(1, 1)).toEqual([255, 0, 0]);
    expect(p(3, 1)).toEqual([0, 0, 255]);
    expect(p(2, 1)).toEqual([255, 255, 255]);
    const decoded = PNG.sync.read(encodePng(rgb.pixels, 5, 3, 3));
    expect(Array.from(decoded.data.subarray((1 * 5 + 3) * 4, (1 * 5 + 3) * 4 + 4))).toEqual([0, 0, 255, 255]);
  });

  it('rejects bad shapes and options', () => {
    const d = new Float32Array(12);
    expect(() => makeGrid({ data: d, shape: [12] })).toThrow(/shape/);
    expect(() => makeGrid({ data: d, shape: [2, 2, 2] })).toThrow(/needs 8 values/);
    expect(() => makeGrid({ data: d, shape: [1, 2, 2, 3] })).toThrow(/channels/);
    expect(() => makeGrid({ data: d, shape: [1, 3, 2, 2] }, { channels: 1 })).toThrow(/grayscale/);
    expect(() => makeGrid({ data: new Uint8Array(4), shape: [1, 2, 2] }, { range: '[-1,1]' })).toThrow(/byte/);
    expect(() => makeGrid({ data: d, shape: [3, 2, 2] }, { nrow: 0 })).toThrow(/nrow/);
    expect(() => encodePng(new Uint8Array(5), 2, 2, 1)).toThrow(/bytes/);
    expect(() => pngInfo(new Uint8Array(40))).toThrow(/PNG/);
  });
});
