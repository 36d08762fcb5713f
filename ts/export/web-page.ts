/**
 * `export --web DIR`: one self-contained index.html that draws a grid of the generator's images in the
 * browser, offline, from a double-click (file://): the ONNX model, onnxruntime-web's WebAssembly build
 * (its single-file bundle and .wasm) and the noise spec are embedded, so the page fetches nothing. A
 * button draws new noise; a conditional run gets a class picker. onnxruntime-web is an optional peer
 * dependency: installed by whoever writes pages.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { type Preset } from '../gan/presets';
import { writeFileAtomic } from '../util/fs';
import { describeValue } from '../tensor/dtype';
import { exportOnnx } from './onnx';
import { checkExportTargets, type ExportTarget } from './targets';
import { readRunInfo } from '../store/run-dir';

export class WebExportError extends Error {
  override name = 'WebExportError';
}

/** onnxruntime-web's bundle (ES module, glue included) and its SIMD WebAssembly binary. */
function ortFiles(): { bundle: string; wasm: Buffer; version: string } {
  let dist: string;
  let version: string;
  try {
    // its exports map hides package.json: from its main file (dist/ort.node.min.js) up
    dist = path.dirname(createRequire(__filename).resolve('onnxruntime-web'));
    version = (JSON.parse(fs.readFileSync(path.join(dist, '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    throw new WebExportError('export --web needs onnxruntime-web (an optional dependency): npm install onnxruntime-web');
  }
  return {
    bundle: fs.readFileSync(path.join(dist, 'ort.wasm.bundle.min.mjs'), 'utf8'),
    wasm: fs.readFileSync(path.join(dist, 'ort-wasm-simd-threaded.wasm')),
    version,
  };
}

const escapeScript = (s: string) => s.replace(/<\/script/gi, '<\\/script');
const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

// The page's script: decode the embedded parts, start onnxruntime-web on the main thread (one thread: no
// SharedArrayBuffer on file://), draw noise as the preset does, run G, paint the grid.
const PAGE_SCRIPT = `
const text = (id) => document.getElementById(id).textContent.trim();
const bytes = (id) => { const s = atob(text(id)); const b = new Uint8Array(s.length); for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i); return b; };
const meta = JSON.parse(text('meta'));
const status = document.getElementById('status');
try {
  const ort = await import(URL.createObjectURL(new Blob([text('ort-src')], { type: 'text/javascript' })));
  ort.env.wasm.wasmBinary = bytes('ort-wasm');
  ort.env.wasm.numThreads = 1;
  const session = await ort.InferenceSession.create(bytes('model'), { executionProviders: ['wasm'] });
  const { noise, classes, range, image } = meta;
  const shape = noise.shape || [noise.dim];
  const perImage = shape.reduce((a, b) => a * b, 1);
  const n = 64, side = image.size, canvas = document.getElementById('grid'), ctx = canvas.getContext('2d');
  canvas.width = canvas.height = 8 * (side + 2) + 2;
  const gauss = () => { let u = 0; while (u === 0) u = Math.random(); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random()); };
  const draw = () => noise.dist === 'normal' ? gauss() : Math.random() * ((noise.high ?? 1) - (noise.low ?? -1)) + (noise.low ?? -1);
  const picker = document.getElementById('digit');
  async function paint() {
    const z = new Float32Array(n * perImage);
    for (let i = 0; i < z.length; i++) z[i] = draw();
    const feeds = { z: new ort.Tensor('float32', z, [n, ...shape]) };
    if (classes) {
      const pick = picker.value;
      feeds.label = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(pick === 'rows' ? Math.floor(i / 8) % classes : Number(pick))), [n]);
    }
    const out = (await session.run(feeds)).images.data;
    const c = image.channels, img = ctx.createImageData(canvas.width, canvas.height);
    img.data.fill(255);
    for (let k = 0; k < n; k++) {
      const ox = 2 + (k % 8) * (side + 2), oy = 2 + Math.floor(k / 8) * (side + 2);
      for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
        const p = ((oy + y) * canvas.width + ox + x) * 4;
        for (let ch = 0; ch < 3; ch++) {
          const v = out[((k * c + (c === 3 ? ch : 0)) * side + y) * side + x];
          const unit = range === '[-1,1]' ? (v + 1) / 2 : v;
          img.data[p + ch] = Math.max(0, Math.min(255, Math.round(unit * 255)));
        }
      }
    }
    ctx.putImageData(img, 0, 0);
    document.body.dataset.drawn = String(Number(document.body.dataset.drawn || 0) + 1);
  }
  document.getElementById('again').addEventListener('click', paint);
  picker?.addEventListener('change', paint);
  await paint();
  status.textContent = '';
} catch (e) {
  status.textContent = 'Could not run the generator: ' + e.message;
  document.body.dataset.error = e.message;
}
`;

/** The page's HTML for a preset's generator given as ONNX bytes. */
export function webPage(preset: Preset, model: Uint8Array, title: string): string {
  const ort = ortFiles();
  const classes = preset.step.conditioning?.classes ?? 0;
  const meta = { noise: preset.step.noise, classes, range: preset.normalize, image: preset.image, ort: ort.version };
  const picker = classes
    ? `<label>Class <select id="digit"><option value="rows">one row per class</option>${Array.from({ length: classes }, (_, i) => `<option value="${i}">${i}</option>`).join('')}</select></label>`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#fafafa}canvas{width:${8 * 30}px;image-rendering:pixelated;border:1px solid #ccc;background:#fff;display:block;margin:1rem 0}button,select{font-size:1rem;margin-right:1rem}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(preset.name)} generator, run in this page by onnxruntime-web ${escapeHtml(ort.version)} (WebAssembly); nothing is downloaded.</p>
<canvas id="grid"></canvas>
<button id="again">New noise</button>${picker}
<p id="status">Loading the generator...</p>
<script type="application/json" id="meta">${escapeScript(JSON.stringify(meta))}</script>
<script type="text/plain" id="ort-src">${escapeScript(ort.bundle)}</script>
<script type="application/octet-stream" id="ort-wasm">${ort.wasm.toString('base64')}</script>
<script type="application/octet-stream" id="model">${Buffer.from(model).toString('base64')}</script>
<script type="module">${PAGE_SCRIPT}</script>
</body></html>
`;
}

/** The two files `exportWeb(runDir, dir)` writes, as export targets (labelled `label`, e.g. '--web'), for checkExportTargets. */
export function webTargets(dir: string, label = 'exportWeb: dir'): ExportTarget[] {
  return [
    { path: path.join(dir, 'index.html'), label: `${label}'s index.html` },
    { path: path.join(dir, 'generator.onnx'), label: `${label}'s generator.onnx` },
  ];
}

/**
 * Writes DIR/index.html (self-contained) and DIR/generator.onnx for a run folder's generator. Both
 * targets are checked first (checkExportTargets: no run's file, folder or other output is replaced).
 */
export function exportWeb(runDir: string, dir: string): { page: string; model: string; bytes: number } {
  if (typeof runDir !== 'string' || runDir === '')
    throw new TypeError(`exportWeb: runDir: expected the path of a run folder (a non-empty string), got ${describeValue(runDir)}`);
  if (typeof dir !== 'string' || dir === '')
    throw new TypeError(`exportWeb: dir: expected the folder to write into (a non-empty string), got ${describeValue(dir)}`);
  checkExportTargets(webTargets(dir));
  const preset = readRunInfo(runDir).config.preset;
  const model = path.join(dir, 'generator.onnx');
  exportOnnx(runDir, model);
  const html = webPage(preset, fs.readFileSync(model), `${preset.name}: ${path.basename(path.resolve(runDir))}`);
  const page = path.join(dir, 'index.html');
  writeFileAtomic(page, html);
  return { page, model, bytes: Buffer.byteLength(html) };
}
