/**
 * The page `serve` answers at /: a grid drawn by this server (it fetches /sample.png). Not export --web's
 * page: that one embeds the ONNX model and onnxruntime-web, an export per load that the server has no
 * need of, since it samples itself.
 */
import { type Generator } from './generator';

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

export function servePage(g: Generator, maxCount: number): string {
  const classes = g.classes
    ? `<label>class <select id="label"><option value="">any</option>${Array.from({ length: g.classes }, (_, i) => `<option>${i}</option>`).join('')}</select></label>`
    : '';
  const count = Math.min(64, maxCount);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(g.preset.name)} samples</title>
<style>body{font-family:sans-serif;margin:2em}img{image-rendering:pixelated;width:484px;display:block;margin-top:1em}</style></head>
<body><h1>${escapeHtml(g.preset.name)}${g.ema ? ' (EMA)' : ''}</h1>
<button id="draw">new samples</button> ${classes}
<img id="grid" alt="a grid of generated images">
<script>
const draw = () => {
  const q = new URLSearchParams({ count: '${count}', seed: String(Math.floor(Math.random() * 2 ** 31)) });
  const l = document.getElementById('label');
  if (l && l.value !== '') q.set('label', l.value);
  document.getElementById('grid').src = '/sample.png?' + q;
};
document.getElementById('draw').onclick = draw;
if (document.getElementById('label')) document.getElementById('label').onchange = draw;
draw();
</script></body></html>
`;
}
