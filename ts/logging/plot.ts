import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Resvg } from '@resvg/resvg-js';
import { writeFileAtomic } from '../util/fs';

/** One training step's losses. `epoch` is the epoch the step belongs to (any numbering, e.g. 1-based). */
export interface LossPoint {
  step: number;
  epoch: number;
  dLoss: number;
  gLoss: number;
}

export interface LossPlotOptions {
  /** Plot area width in CSS pixels (the image adds axes, legend and title). Default 720. */
  width?: number;
  /** Plot area height in CSS pixels. Default 360. */
  height?: number;
  /** Chart title. Default 'GAN losses'. */
  title?: string;
  /**
   * Most per-step points drawn per series; longer histories are averaged over equal buckets of
   * consecutive steps (the epoch means always use every point). Default 2000.
   */
  maxPoints?: number;
  /** PNG scale factor (2 for a sharper image). Default 1. */
  scale?: number;
}

/** Series names in the legend and their colors (per-step curves light, epoch means saturated). */
export const LOSS_SERIES = ['D loss', 'G loss', 'D loss (epoch mean)', 'G loss (epoch mean)'] as const;
export const LOSS_COLORS = ['#9ecae9', '#ffbf79', '#1f77b4', '#ff7f0e'] as const;

export interface EpochMean {
  epoch: number;
  /** Mean step of the epoch's points (where the mean is drawn). */
  step: number;
  dLoss: number;
  gLoss: number;
  count: number;
}

/** Per-epoch means of D and G loss, in order of first appearance; non-finite losses are skipped. */
export function epochMeans(points: readonly LossPoint[]): EpochMean[] {
  const by = new Map<number, { s: number; d: number; nd: number; g: number; ng: number; n: number }>();
  for (const p of points) {
    let a = by.get(p.epoch);
    if (!a) {
      a = { s: 0, d: 0, nd: 0, g: 0, ng: 0, n: 0 };
      by.set(p.epoch, a);
    }
    a.s += p.step;
    a.n++;
    if (Number.isFinite(p.dLoss)) {
      a.d += p.dLoss;
      a.nd++;
    }
    if (Number.isFinite(p.gLoss)) {
      a.g += p.gLoss;
      a.ng++;
    }
  }
  return [...by].map(([epoch, a]) => ({
    epoch,
    step: a.s / a.n,
    dLoss: a.nd ? a.d / a.nd : NaN,
    gLoss: a.ng ? a.g / a.ng : NaN,
    count: a.n,
  }));
}

type Row = { step: number; series: string; loss: number };

function bucketed(points: readonly LossPoint[], maxPoints: number): Row[] {
  const sorted = [...points].sort((a, b) => a.step - b.step);
  const rows: Row[] = [];
  const per = Math.max(1, Math.ceil(sorted.length / Math.max(1, maxPoints)));
  for (let i = 0; i < sorted.length; i += per) {
    const chunk = sorted.slice(i, i + per);
    const mean = (f: (p: LossPoint) => number) => {
      const vals = chunk.map(f).filter(Number.isFinite);
      return vals.length ? vals.reduce((s, x) => s + x, 0) / vals.length : NaN;
    };
    const step = mean((p) => p.step);
    const d = mean((p) => p.dLoss);
    const g = mean((p) => p.gLoss);
    if (Number.isFinite(d)) rows.push({ step, series: LOSS_SERIES[0], loss: d });
    if (Number.isFinite(g)) rows.push({ step, series: LOSS_SERIES[1], loss: g });
  }
  return rows;
}

/** The Vega spec of the loss chart (line chart, legend, axis titles); data is inlined. */
export function lossPlotSpec(points: readonly LossPoint[], opts: LossPlotOptions = {}): Record<string, unknown> {
  const steps = bucketed(points, opts.maxPoints ?? 2000);
  const means: Row[] = [];
  for (const m of epochMeans(points).sort((a, b) => a.step - b.step)) {
    if (Number.isFinite(m.dLoss)) means.push({ step: m.step, series: LOSS_SERIES[2], loss: m.dLoss });
    if (Number.isFinite(m.gLoss)) means.push({ step: m.step, series: LOSS_SERIES[3], loss: m.gLoss });
  }
  const empty = steps.length === 0 && means.length === 0;
  const lineGroup = (data: string, strokeWidth: number, withPoints: boolean) => ({
    type: 'group',
    from: { facet: { name: `${data}_series`, data, groupby: 'series' } },
    marks: [
      {
        type: 'line',
        from: { data: `${data}_series` },
        encode: {
          enter: {
            x: { scale: 'x', field: 'step' },
            y: { scale: 'y', field: 'loss' },
            stroke: { scale: 'color', field: 'series' },
            strokeWidth: { value: strokeWidth },
            interpolate: { value: 'linear' },
          },
        },
      },
      ...(withPoints
        ? [
            {
              type: 'symbol',
              from: { data: `${data}_series` },
              encode: {
                enter: {
                  x: { scale: 'x', field: 'step' },
                  y: { scale: 'y', field: 'loss' },
                  fill: { scale: 'color', field: 'series' },
                  size: { value: 40 },
                },
              },
            },
          ]
        : []),
    ],
  });
  return {
    width: opts.width ?? 720,
    height: opts.height ?? 360,
    padding: 8,
    autosize: { type: 'pad' },
    background: 'white',
    title: { text: opts.title ?? 'GAN losses', fontSize: 15 },
    data: [
      { name: 'steps', values: steps },
      { name: 'means', values: means },
    ],
    scales: [
      {
        name: 'x',
        type: 'linear',
        range: 'width',
        zero: false,
        nice: true,
        domain: empty
          ? [0, 1]
          : {
              fields: [
                { data: 'steps', field: 'step' },
                { data: 'means', field: 'step' },
              ],
            },
      },
      {
        name: 'y',
        type: 'linear',
        range: 'height',
        zero: false,
        nice: true,
        domain: empty
          ? [0, 1]
          : {
              fields: [
                { data: 'steps', field: 'loss' },
                { data: 'means', field: 'loss' },
              ],
            },
      },
      { name: 'color', type: 'ordinal', domain: [...LOSS_SERIES], range: [...LOSS_COLORS] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'Step', grid: true, tickCount: 8 },
      { orient: 'left', scale: 'y', title: 'Loss', grid: true },
    ],
    legends: [{ fill: 'color', title: 'Series', orient: 'right', symbolType: 'square' }],
    marks: [lineGroup('steps', 1.25, false), lineGroup('means', 2.5, true)],
  };
}

// Vega 6 is an ES module with top-level await: a CommonJS require() cannot load it, and a dynamic
// import() does not work inside Jest's module sandbox. A short-lived worker thread imports it in
// plain Node, renders the spec to SVG with the headless 'none' renderer and posts the text back.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
import(workerData.vegaUrl)
  .then(async (vega) => {
    const view = new vega.View(vega.parse(workerData.spec), { renderer: 'none' });
    try {
      parentPort.postMessage({ svg: await view.toSVG() });
    } finally {
      view.finalize();
    }
  })
  .catch((err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
`;

/** Renders any Vega spec to SVG text with vega's headless renderer (in a worker thread). */
export function renderVegaSvg(spec: object): Promise<string> {
  const vegaUrl = pathToFileURL(require.resolve('vega')).href;
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { spec, vegaUrl }, stdout: true, stderr: true });
    let settled = false;
    const done = (err: Error | null, svg?: string) => {
      if (settled) return;
      settled = true;
      void worker.terminate();
      if (err) reject(err);
      else resolve(svg!);
    };
    worker.once('message', (msg: { svg?: string; error?: string }) =>
      msg.svg !== undefined ? done(null, msg.svg) : done(new Error(`vega rendering failed: ${msg.error}`)),
    );
    worker.once('error', (err) => done(err));
    worker.once('exit', (code) => done(new Error(`vega worker exited with code ${code} before rendering`)));
  });
}

/** SVG -> PNG with resvg (system fonts for text; white background). */
export function svgToPng(svg: string, scale = 1): Buffer {
  const resvg = new Resvg(svg, {
    background: 'white',
    fitTo: scale === 1 ? { mode: 'original' } : { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true },
    logLevel: 'off',
  });
  return resvg.render().asPng();
}

/** Renders the loss chart to SVG text and PNG bytes. */
export async function renderLossPlot(points: readonly LossPoint[], opts: LossPlotOptions = {}): Promise<{ svg: string; png: Buffer }> {
  const svg = await renderVegaSvg(lossPlotSpec(points, opts));
  return { svg, png: svgToPng(svg, opts.scale ?? 1) };
}

/**
 * Renders the loss chart and writes `<dir>/loss.svg` and `<dir>/loss.png` atomically (each via a
 * temporary file and rename). Returns the two paths.
 */
export async function writeLossPlot(dir: string, points: readonly LossPoint[], opts: LossPlotOptions = {}): Promise<{ svgPath: string; pngPath: string }> {
  const { svg, png } = await renderLossPlot(points, opts);
  const svgPath = path.join(dir, 'loss.svg');
  const pngPath = path.join(dir, 'loss.png');
  writeFileAtomic(svgPath, svg);
  writeFileAtomic(pngPath, png);
  return { svgPath, pngPath };
}
