import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { LOSS_COLORS, epochMeans, lossPlotSpec, writeLossPlot, type LossPoint } from '../../ts/logging/plot';
import { tmpDir } from './tmp';

/** 3 epochs of 50 steps with D falling and G rising, plus a NaN the plot must skip. */
function history(): LossPoint[] {
  const pts: LossPoint[] = [];
  for (let e = 1; e <= 3; e++)
    for (let s = 0; s < 50; s++) {
      const step = (e - 1) * 50 + s;
      pts.push({ step, epoch: e, dLoss: 1.4 - step / 200 + 0.1 * Math.sin(step), gLoss: 0.7 + step / 100 + 0.1 * Math.cos(step) });
    }
  pts[10].dLoss = NaN;
  return pts;
}

function hexToRgb(hex: string): [number, number, number] {
  const n = parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

describe('loss plot', () => {
  it('computes per-epoch means, skipping non-finite losses', () => {
    const m = epochMeans([
      { step: 0, epoch: 1, dLoss: 1, gLoss: 2 },
      { step: 1, epoch: 1, dLoss: 3, gLoss: NaN },
      { step: 2, epoch: 2, dLoss: 0.5, gLoss: 4 },
    ]);
    expect(m).toEqual([
      { epoch: 1, step: 0.5, dLoss: 2, gLoss: 2, count: 2 },
      { epoch: 2, step: 2, dLoss: 0.5, gLoss: 4, count: 1 },
    ]);
  });

  it('averages long histories into at most maxPoints points per series', () => {
    const pts = history();
    const spec = lossPlotSpec(pts, { maxPoints: 30 }) as { data: { name: string; values: { series: string }[] }[] };
    const steps = spec.data.find((d) => d.name === 'steps')!.values;
    expect(steps.filter((r) => r.series === 'G loss').length).toBe(30);
    expect(steps.filter((r) => r.series === 'D loss').length).toBe(30);
    expect(spec.data.find((d) => d.name === 'means')!.values.length).toBe(6);
  });

  it('writes loss.svg and loss.png: requested size, both series drawn, axis titles', async () => {
    const dir = tmpDir();
    const { svgPath, pngPath } = await writeLossPlot(dir, history(), { width: 500, height: 260, title: 'Run 7 losses' });
    expect(svgPath).toBe(path.join(dir, 'loss.svg'));
    expect(fs.readdirSync(dir).sort()).toEqual(['loss.png', 'loss.svg']); // no temp files left
    const svg = fs.readFileSync(svgPath, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const text of ['Step', 'Loss', 'Run 7 losses', 'D loss', 'G loss', 'D loss (epoch mean)']) {
      expect(svg).toContain(`>${text}</text>`);
    }
    expect(svg).not.toMatch(/NaN/);

    const png = PNG.sync.read(fs.readFileSync(pngPath));
    const svgW = Number(/<svg[^>]*\swidth="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    const svgH = Number(/<svg[^>]*\sheight="(\d+(?:\.\d+)?)"/.exec(svg)![1]);
    expect(png.width).toBe(Math.round(svgW));
    expect(png.height).toBe(Math.round(svgH));
    // plot area plus axes, title and legend
    expect(png.width).toBeGreaterThan(500 + 60);
    expect(png.width).toBeLessThan(500 + 400);
    expect(png.height).toBeGreaterThan(260 + 40);
    expect(png.height).toBeLessThan(260 + 200);

    const colors = new Map<number, number>();
    let nonWhite = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const key = (png.data[i] << 16) | (png.data[i + 1] << 8) | png.data[i + 2];
      colors.set(key, (colors.get(key) ?? 0) + 1);
      if (key !== 0xffffff) nonWhite++;
    }
    expect(colors.size).toBeGreaterThan(50); // anti-aliased lines and text
    expect(nonWhite / (png.width * png.height)).toBeGreaterThan(0.02);
    expect(nonWhite / (png.width * png.height)).toBeLessThan(0.5);
    // every series' color appears as solid pixels (legend swatches, thick mean lines, points)
    for (const hex of LOSS_COLORS) {
      const [r, g, b] = hexToRgb(hex);
      expect(colors.get((r << 16) | (g << 8) | b) ?? 0).toBeGreaterThan(20);
    }
  });

  it('renders an empty history without failing', async () => {
    const dir = tmpDir();
    const { pngPath } = await writeLossPlot(dir, [], { width: 200, height: 100 });
    const png = PNG.sync.read(fs.readFileSync(pngPath));
    expect(png.width).toBeGreaterThan(200);
  });
});
