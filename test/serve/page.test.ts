/** The page `serve` answers at /, in headless Chromium: it draws a grid from /sample.png, new noise on a click, the picked class on a change. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type GeneratorServer } from '../../ts/serve/http';
import { tinyRun } from '../helpers/lib';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const describeBrowser = fs.existsSync(CHROMIUM) ? describe : describe.skip;

/** The grid once the image at the n-th /sample.png answer has loaded: its size and the query it asked. */
async function loaded(page: Page, answered: URL[], n: number): Promise<{ width: number; height: number; query: URLSearchParams }> {
  for (let i = 0; i < 400 && answered.length < n; i++) await new Promise((r) => setTimeout(r, 25));
  expect(answered.length).toBe(n);
  const src = JSON.stringify(answered[n - 1]!.pathname + answered[n - 1]!.search);
  await page.waitForFunction(
    `(() => { const img = document.getElementById('grid'); return img.src.endsWith(${src}) && img.complete && img.naturalWidth > 0; })()`,
  );
  const size = (await page.evaluate(
    `(() => { const img = document.getElementById('grid'); return { width: img.naturalWidth, height: img.naturalHeight }; })()`,
  )) as {
    width: number;
    height: number;
  };
  return { ...size, query: answered[n - 1]!.searchParams };
}

describeBrowser('the served page in headless Chromium', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-serve-page-'));
  let browser: Browser;
  let server: GeneratorServer;
  beforeAll(async () => {
    server = await startServer(tinyRun('cgan', root), { port: 0, watchMs: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('draws a 64-image grid, new noise on a click, the picked class on a change', async () => {
    const page = await browser.newPage();
    const answered: URL[] = [];
    const statuses: number[] = [];
    page.on('response', (r) => {
      const url = new URL(r.url());
      if (url.pathname !== '/sample.png') return;
      statuses.push(r.status());
      answered.push(url);
    });
    await page.goto(`${server.url}/`);
    const first = await loaded(page, answered, 1);
    expect([first.width, first.height]).toEqual([242, 242]);
    await page.click('#draw');
    const second = await loaded(page, answered, 2);
    expect(second.query.get('seed')).not.toBe(first.query.get('seed'));
    await page.selectOption('#label', '3');
    const third = await loaded(page, answered, 3);
    expect(third.query.get('label')).toBe('3');
    expect(statuses).toEqual([200, 200, 200]);
    await page.close();
  }, 120_000);
});
