/** quality.png/svg: classifier-FID over epochs beside the real-data floor, drawn with Vega like the loss plot. */
import * as path from 'node:path';
import { writeFileAtomic } from '../util/fs';
import { renderVegaSvg, svgToPng } from './plot';

export const QUALITY_SERIES = ['FID (generator)', 'FID (real data)'] as const;

/** The Vega spec: FID per epoch on a log axis (it falls by orders of magnitude early on). */
export function qualityPlotSpec(rows: readonly { epoch: number; fid: number; floorFid: number }[], opts: { title?: string } = {}): Record<string, unknown> {
  const values = rows.flatMap((r) => [
    { epoch: r.epoch, series: QUALITY_SERIES[0], fid: Math.max(r.fid, 1e-3) },
    { epoch: r.epoch, series: QUALITY_SERIES[1], fid: Math.max(r.floorFid, 1e-3) },
  ]);
  const enc = { x: { scale: 'x', field: 'epoch' }, y: { scale: 'y', field: 'fid' } };
  return {
    width: 480,
    height: 300,
    padding: 8,
    autosize: { type: 'pad' },
    background: 'white',
    title: { text: opts.title ?? 'Classifier-FID over epochs (lower is better)', fontSize: 15 },
    data: [{ name: 'rows', values }],
    scales: [
      { name: 'x', type: 'linear', range: 'width', zero: false, nice: true, domain: values.length ? { data: 'rows', field: 'epoch' } : [0, 1] },
      { name: 'y', type: 'log', range: 'height', nice: true, domain: values.length ? { data: 'rows', field: 'fid' } : [1, 10] },
      { name: 'color', type: 'ordinal', domain: [...QUALITY_SERIES], range: ['#d62728', '#7f7f7f'] },
    ],
    axes: [
      { orient: 'bottom', scale: 'x', title: 'Epoch', grid: true, tickMinStep: 1 },
      { orient: 'left', scale: 'y', title: 'Classifier-FID', grid: true },
    ],
    legends: [{ fill: 'color', title: 'Series', orient: 'right', symbolType: 'square' }],
    marks: [
      {
        type: 'group',
        from: { facet: { name: 'series', data: 'rows', groupby: 'series' } },
        marks: [
          { type: 'line', from: { data: 'series' }, encode: { enter: { ...enc, stroke: { scale: 'color', field: 'series' }, strokeWidth: { value: 2 } } } },
          { type: 'symbol', from: { data: 'series' }, encode: { enter: { ...enc, fill: { scale: 'color', field: 'series' }, size: { value: 40 } } } },
        ],
      },
    ],
  };
}

/** Writes `<dir>/quality.svg` and `<dir>/quality.png` atomically; returns the PNG's path. */
export async function writeQualityPlot(dir: string, rows: readonly { epoch: number; fid: number; floorFid: number }[]): Promise<string> {
  const svg = await renderVegaSvg(qualityPlotSpec(rows));
  const png = path.join(dir, 'quality.png');
  writeFileAtomic(path.join(dir, 'quality.svg'), svg);
  writeFileAtomic(png, svgToPng(svg));
  return png;
}
