import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../util/fs';
import { pngInfo } from './png';

export interface ReportOptions {
  /** Page title. Default: "Training report: <run folder name>". */
  title?: string;
  /**
   * Embed the images as data: URIs so report.html is a single self-contained file. Default false:
   * the page links the images by relative paths and must stay inside the run folder.
   */
  embed?: boolean;
  /** Sample grids narrower than this many pixels are shown scaled up (pixelated) by 2. Default 400. */
  upscaleBelow?: number;
  /** Output file name inside the run folder. Default 'report.html'. */
  fileName?: string;
  /**
   * Where the run trained, as the run knows it at its end (the Trainer gives it): the device, why device
   * 'auto' fell back to the CPU, and the CUDA graph's state (GanStep.cudaGraph). Default: the device
   * in config.json, without the fallback and graph state (the folder does not record them).
   */
  device?: { name: string; fallback?: string; cudaGraph: string };
}

/** What writeReport found in the run folder (relative paths). */
export interface ReportContents {
  path: string;
  lossPlot: string | null;
  real: string | null;
  samples: { file: string; label: string }[];
  config: boolean;
  eventFiles: string[];
  /** quality.png and metrics.csv (quality metrics during training), when present. */
  qualityPlot: string | null;
  metrics: string | null;
  /** The device named (options.device, else config.json's), or null when neither gives one. */
  device: string | null;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** A CSV file (header line, then rows; numbers shown with at most 4 decimals) as an HTML table. */
function csvTable(text: string): string {
  const [head, ...rows] = text.split('\n').filter((l) => l !== '');
  const cell = (v: string) => (v !== '' && Number.isFinite(Number(v)) && v.includes('.') ? String(Number(Number(v).toFixed(4))) : v);
  const tr = (cells: string[], tag: string) => `<tr>${cells.map((c) => `<${tag}>${escapeHtml(cell(c))}</${tag}>`).join('')}</tr>`;
  return `<table class="metrics">\n${tr((head ?? '').split(','), 'th')}\n${rows.map((r) => tr(r.split(','), 'td')).join('\n')}\n</table>`;
}

const isFile = (p: string) => {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

/** What the quality figures are, naming the classifier of the run's dataset (config.json's data.dataset; quality/classifier.ts). */
function qualityNote(dataset: unknown): string {
  const [title, kind] = dataset === 'fashion-mnist' ? ['Fashion-MNIST', 'class'] : ['MNIST', 'digit'];
  return `Classifier-FID (lower is better; "floor" is real ${title} training images), Inception-style score (max 10) and coverage (the rarest ${kind}'s share relative to an even one) from the package's ${title} classifier (${dataset === 'fashion-mnist' ? 'fashion-mnist' : 'mnist'}-classifier). Not comparable with Inception-FID figures, nor between classifiers.`;
}

/** Sample grid files in `samples/`, ordered by the number in their name ("epoch-002" before "epoch-010"). */
function listSamples(runDir: string): { file: string; label: string }[] {
  const dir = path.join(runDir, 'samples');
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /\.(png|svg)$/i.test(n) && isFile(path.join(dir, n)));
  } catch {
    return [];
  }
  const collator = new Intl.Collator('en', { numeric: true });
  return names.sort(collator.compare).map((n) => {
    const m = /^(epoch|step|iter)[-_]?0*(\d+)\.\w+$/i.exec(n);
    const label = m ? `${m[1][0].toUpperCase()}${m[1].slice(1).toLowerCase()} ${m[2]}` : n.replace(/\.\w+$/, '');
    return { file: `samples/${n}`, label };
  });
}

function findEventFiles(runDir: string, depth = 2): string[] {
  const out: string[] = [];
  const walk = (rel: string, d: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(path.join(runDir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isFile() && e.name.includes('tfevents')) out.push(r);
      else if (e.isDirectory() && d > 0) walk(r, d - 1);
    }
  };
  walk('', depth);
  return out.sort();
}

const urlOf = (rel: string) => rel.split('/').map(encodeURIComponent).join('/');

/**
 * Writes `report.html` into a run folder: the loss plot (`loss.png`, else `loss.svg`), the real
 * images (`real.png`), the sample grids (`samples/*.png`, e.g. `samples/epoch-001.png`, in
 * numeric order) and `config.json` pretty-printed. Sections whose files are missing say so. The
 * page uses no external URLs: images are linked relative to the folder, or embedded as data: URIs
 * with `embed: true`. Written atomically; returns what it found.
 */
export function writeReport(runDir: string, opts: ReportOptions = {}): ReportContents {
  const runName = path.basename(path.resolve(runDir));
  const title = opts.title ?? `Training report: ${runName}`;
  const upscaleBelow = opts.upscaleBelow ?? 400;
  const lossPlot = ['loss.png', 'loss.svg'].find((f) => isFile(path.join(runDir, f))) ?? null;
  const real = isFile(path.join(runDir, 'real.png')) ? 'real.png' : null;
  const samples = listSamples(runDir);
  const eventFiles = findEventFiles(runDir);
  const qualityPlot = ['quality.png', 'quality.svg'].find((f) => isFile(path.join(runDir, f))) ?? null;
  const metrics = isFile(path.join(runDir, 'metrics.csv')) ? 'metrics.csv' : null;

  const img = (rel: string, alt: string, cls: string) => {
    const abs = path.join(runDir, rel);
    const bytes = fs.readFileSync(abs);
    const isSvg = rel.toLowerCase().endsWith('.svg');
    let size = '';
    if (!isSvg) {
      try {
        const { width, height } = pngInfo(bytes);
        const k = cls === 'grid' && width < upscaleBelow ? 2 : 1;
        size = ` width="${width * k}" height="${height * k}"`;
      } catch {
        // not a PNG after all: let the browser size it
      }
    }
    const src = opts.embed ? `data:${isSvg ? 'image/svg+xml' : 'image/png'};base64,${bytes.toString('base64')}` : urlOf(rel);
    return `<img class="${cls}" src="${src}" alt="${escapeHtml(alt)}"${size}>`;
  };

  let configHtml: string;
  let configDevice: string | null = null;
  let dataset: unknown;
  let emaDecay: unknown; // the step spec's EMA of G: the grids are drawn by it
  const configPath = path.join(runDir, 'config.json');
  const hasConfig = isFile(configPath);
  if (hasConfig) {
    const text = fs.readFileSync(configPath, 'utf8');
    try {
      const parsed = JSON.parse(text);
      configHtml = `<pre>${escapeHtml(JSON.stringify(parsed, null, 2))}</pre>`;
      if (typeof parsed?.device === 'string') configDevice = parsed.device;
      dataset = parsed?.config?.data?.dataset;
      emaDecay = parsed?.config?.preset?.step?.ema?.decay;
    } catch {
      configHtml = `<p class="missing">config.json is not valid JSON; shown as it is:</p><pre>${escapeHtml(text)}</pre>`;
    }
  } else {
    configHtml = '<p class="missing">No config.json in this run folder.</p>';
  }

  const d = opts.device;
  const device = d?.name ?? configDevice;
  let deviceHtml: string;
  if (d) {
    deviceHtml = `<p>Trained on <code>${escapeHtml(d.name)}</code>${d.fallback ? `: device 'auto' fell back to the CPU because ${escapeHtml(d.fallback)}` : ''}.</p>
<p>CUDA graph: ${escapeHtml(d.cudaGraph)}</p>`;
  } else if (device) {
    deviceHtml = `<p>Trained on <code>${escapeHtml(device)}</code> (config.json).</p>
<p class="missing">Whether device 'auto' fell back to the CPU, and the CUDA graph's state, are in the report the run writes at its end (this one was rewritten from the folder).</p>`;
  } else {
    deviceHtml = `<p class="missing">No device recorded (${hasConfig ? 'config.json names none' : 'no config.json'}).</p>`;
  }

  const figures: string[] = [];
  if (real) figures.push(`<figure>${img(real, 'Real training images', 'grid')}<figcaption>Real images</figcaption></figure>`);
  for (const s of samples) {
    figures.push(`<figure>${img(s.file, `Generated samples, ${s.label}`, 'grid')}<figcaption>${escapeHtml(s.label)}</figcaption></figure>`);
  }

  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.5rem; margin-bottom: .25rem; }
  h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: .25rem; margin-top: 2rem; }
  .meta, .missing { color: #666; }
  img.plot { max-width: 100%; height: auto; }
  img.grid { image-rendering: pixelated; border: 1px solid #ccc; }
  .samples { display: flex; flex-wrap: wrap; gap: 1rem; }
  figure { margin: 0; }
  figcaption { text-align: center; font-size: .9rem; color: #444; }
  pre { background: #f6f8fa; padding: .75rem; overflow: auto; font-size: .85rem; }
  code { background: #f6f8fa; padding: 0 .25rem; }
table.metrics { border-collapse: collapse; margin-top: 0.5em; }
table.metrics th, table.metrics td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="meta">Run folder <code>${escapeHtml(runName)}</code>, report written ${escapeHtml(new Date().toISOString())}.</p>
<section id="losses">
<h2>Losses</h2>
${
  lossPlot
    ? `${img(lossPlot, 'Discriminator and generator loss over training steps, with per-epoch means', 'plot')}`
    : '<p class="missing">No loss plot (loss.png) yet.</p>'
}
</section>
${
  qualityPlot || metrics
    ? `<section id="quality">
<h2>Quality</h2>
<p>${qualityNote(dataset)}</p>
${qualityPlot ? img(qualityPlot, 'Classifier-FID over epochs beside the real-data floor', 'plot') : ''}
${metrics ? csvTable(fs.readFileSync(path.join(runDir, metrics), 'utf8')) : ''}
</section>`
    : ''
}
<section id="device">
<h2>Device</h2>
${deviceHtml}
</section>
<section id="samples">
<h2>Samples</h2>
${typeof emaDecay === 'number' ? `<p>Drawn by the EMA generator (an exponential moving average of G, decay ${emaDecay}), as sample, eval and export do.</p>\n` : ''}${figures.length ? `<div class="samples">\n${figures.join('\n')}\n</div>` : '<p class="missing">No sample grids yet.</p>'}
</section>
<section id="config">
<h2>Configuration</h2>
${configHtml}
</section>
${
  eventFiles.length
    ? `<section id="tensorboard">
<h2>TensorBoard</h2>
<p>${eventFiles.length} event file${eventFiles.length > 1 ? 's' : ''} (e.g. <code>${escapeHtml(eventFiles[0])}</code>); view with <code>tensorboard --logdir ${escapeHtml(runName)}</code>.</p>
</section>`
    : ''
}
</body>
</html>
`;
  const out = path.join(runDir, opts.fileName ?? 'report.html');
  writeFileAtomic(out, html);
  return { path: out, lossPlot, real, samples, config: hasConfig, eventFiles, qualityPlot, metrics, device };
}
