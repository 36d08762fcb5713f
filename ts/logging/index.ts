// Training observability: TensorBoard event files, image grids, loss plots and the HTML run
// report. Plain numbers and typed arrays in, files out; nothing is printed.
export { SummaryWriter, maskedCrc32c, tfRecord } from './tensorboard';
export type { ImageInput, SummaryWriterOptions } from './tensorboard';
export { makeGrid, saveImageGrid } from './grid';
export type { GridImage, GridOptions, ImageBatch, ImageRange } from './grid';
export { encodePng, encodePixelImage, savePng, pngInfo } from './png';
export type { PixelChannels, PixelImage, PngInfo } from './png';
export {
  LOSS_COLORS,
  LOSS_SERIES,
  epochMeans,
  lossPlotSpec,
  renderLossPlot,
  renderVegaSvg,
  svgToPng,
  writeLossPlot,
} from './plot';
export type { EpochMean, LossPlotOptions, LossPoint } from './plot';
export { writeReport } from './report';
export type { ReportContents, ReportOptions } from './report';
