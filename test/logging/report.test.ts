import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { saveImageGrid } from '../../ts/logging/grid';
import { writeLossPlot } from '../../ts/logging/plot';
import { writeReport } from '../../ts/logging/report';
import { SummaryWriter } from '../../ts/logging/tensorboard';
import { tmpDir } from './tmp';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(CHROMIUM);
const describeBrowser = hasChromium ? describe : describe.skip;

const config = { preset: 'mnist-mlp', epochs: 3, batchSize: 64, lr: 0.0002, note: '<script>alert(1)</script> & co' };

/** A run folder as a training run leaves it: config, loss plot, real images, three sample grids. */
async function fakeRun(): Promise<string> {
  const dir = path.join(tmpDir('report-test-'), 'run 1'); // a space, to check URL encoding
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  const imgs = (seed: number) => new Float32Array(16 * 28 * 28).map((_, i) => Math.sin(i * 0.01 + seed));
  saveImageGrid(path.join(dir, 'real.png'), { data: imgs(0), shape: [16, 1, 28, 28] }, { nrow: 4, range: '[-1,1]' });
  for (const e of [1, 2, 10]) {
    const name = `epoch-${String(e).padStart(3, '0')}.png`;
    saveImageGrid(path.join(dir, 'samples', name), { data: imgs(e), shape: [16, 28, 28] }, { nrow: 4, range: '[-1,1]' });
  }
  const pts = Array.from({ length: 90 }, (_, s) => ({ step: s, epoch: 1 + Math.floor(s / 30), dLoss: 1 - s / 200, gLoss: 1 + s / 100 }));
  await writeLossPlot(dir, pts, { width: 300, height: 150 });
  const w = new SummaryWriter(path.join(dir, 'tb'));
  w.addScalar('loss/D', 1, 0);
  w.close();
  return dir;
}

describe('writeReport (file contents)', () => {
  it('lists what the run folder holds, in numeric epoch order, with relative links only', async () => {
    const dir = await fakeRun();
    const r = writeReport(dir);
    expect(r.path).toBe(path.join(dir, 'report.html'));
    expect(r.lossPlot).toBe('loss.png');
    expect(r.real).toBe('real.png');
    expect(r.samples).toEqual([
      { file: 'samples/epoch-001.png', label: 'Epoch 1' },
      { file: 'samples/epoch-002.png', label: 'Epoch 2' },
      { file: 'samples/epoch-010.png', label: 'Epoch 10' },
    ]);
    expect(r.config).toBe(true);
    expect(r.eventFiles).toHaveLength(1);
    expect(r.eventFiles[0]).toMatch(/^tb\/events\.out\.tfevents\./);
    const html = fs.readFileSync(r.path, 'utf8');
    expect(html).not.toMatch(/(https?:)?\/\/[a-z]/i);
    const srcs = [...html.matchAll(/<img [^>]*src="([^"]+)"/g)].map((m) => m[1]);
    expect(srcs).toEqual(['loss.png', 'real.png', 'samples/epoch-001.png', 'samples/epoch-002.png', 'samples/epoch-010.png']);
    // config pretty-printed and escaped
    expect(html).toContain('  &quot;batchSize&quot;: 64,');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; co');
    expect(html).not.toContain('<script>');
    // 4x4 grid of 28x28 with padding 2 = 122 px, shown at 2x
    expect(html).toContain('src="real.png" alt="Real training images" width="244" height="244"');
  });

  it('reports missing pieces instead of failing', () => {
    const dir = tmpDir();
    const r = writeReport(dir);
    expect(r).toMatchObject({ lossPlot: null, real: null, samples: [], config: false, eventFiles: [] });
    const html = fs.readFileSync(r.path, 'utf8');
    expect(html).toContain('No loss plot');
    expect(html).toContain('No sample grids yet');
    expect(html).toContain('No config.json');
    expect(r.device).toBeNull();
    expect(html).toContain('<p class="missing">No device recorded (no config.json).</p>');
  });

  it('names the device, the CPU fallback and the CUDA graph state the run gives; else the device in config.json', async () => {
    const dir = await fakeRun();
    const fallback = 'CUDA is not available: no NVIDIA driver was found (libcuda.so.1 could not be loaded)';
    const r = writeReport(dir, { device: { name: 'cpu', fallback, cudaGraph: 'off: not on a CUDA device' } });
    expect(r.device).toBe('cpu');
    expect(fs.readFileSync(r.path, 'utf8')).toContain(
      `<section id="device">\n<h2>Device</h2>\n<p>Trained on <code>cpu</code>: device 'auto' fell back to the CPU because ${fallback}.</p>\n<p>CUDA graph: off: not on a CUDA device</p>\n</section>`,
    );
    const onGpu = writeReport(dir, { device: { name: 'cuda:0', cudaGraph: 'replaying (batch 64)' } });
    expect(fs.readFileSync(onGpu.path, 'utf8')).toContain('<p>Trained on <code>cuda:0</code>.</p>\n<p>CUDA graph: replaying (batch 64)</p>');
    // rewritten from the folder alone (libtorch-gan report): config.json's device; the rest is the run's to say
    expect(writeReport(dir).device).toBeNull(); // fakeRun's config.json names no device
    expect(fs.readFileSync(r.path, 'utf8')).toContain('<p class="missing">No device recorded (config.json names none).</p>');
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ device: 'cpu', config }));
    expect(writeReport(dir).device).toBe('cpu');
    const html = fs.readFileSync(r.path, 'utf8');
    expect(html).toContain('<p>Trained on <code>cpu</code> (config.json).</p>');
    expect(html).toContain("the CUDA graph's state, are in the report the run writes at its end");
  });
});

describeBrowser('writeReport in headless Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const embed of [false, true]) {
    it(`shows every image (${embed ? 'embedded data URIs' : 'relative links'}) with no external requests`, async () => {
      const dir = await fakeRun();
      const r = writeReport(dir, { embed });
      if (embed) {
        // self-contained: still works when moved away from the run folder
        fs.renameSync(r.path, path.join(path.dirname(dir), 'moved.html'));
      }
      const page = await browser.newPage();
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(pathToFileURL(embed ? path.join(path.dirname(dir), 'moved.html') : r.path).href, { waitUntil: 'load' });
      // (the project compiles without the DOM lib: describe the element fields that are read)
      type Img = { naturalWidth: number; naturalHeight: number; complete: boolean };
      const imgs = await page.$$eval('img', (els) =>
        els.map((el) => {
          const im = el as unknown as Img;
          return { w: im.naturalWidth, h: im.naturalHeight, ok: im.complete };
        }),
      );
      expect(imgs).toHaveLength(5);
      for (const im of imgs) {
        expect(im.ok).toBe(true);
        expect(im.w).toBeGreaterThan(0);
      }
      // the real-image grid and sample grids decode at their PNG size
      expect(imgs.slice(1).map((im) => [im.w, im.h])).toEqual(Array(4).fill([122, 122]));
      expect(await page.textContent('h1')).toBe('Training report: run 1');
      expect(await page.textContent('#config pre')).toBe(JSON.stringify(config, null, 2));
      expect(requests.every((u) => u.startsWith('file:') || u.startsWith('data:'))).toBe(true);
      await page.close();
    });
  }
});
