/**
 * `export --web DIR`: the page opened from disk in headless Chromium with every non-file request
 * refused draws a non-blank grid, new noise on a click, and a conditional run's chosen class.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { runCli, tinyRun } from '../helpers/lib';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const describeBrowser = fs.existsSync(CHROMIUM) ? describe : describe.skip;

/** The grid's pixels (red channel) once the page has drawn `times` grids. */
async function grid(page: Page, times: number): Promise<number[]> {
  // browser-side code as strings: this project's TypeScript has no DOM types
  await page.waitForFunction(`Number(document.body.dataset.drawn ?? 0) >= ${times} || document.body.dataset.error`, null, { timeout: 60_000 });
  return page.evaluate(`(() => {
    if (document.body.dataset.error) throw new Error(document.body.dataset.error);
    const c = document.getElementById('grid');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return Array.from(d.filter((_, i) => i % 4 === 0));
  })()`);
}

describeBrowser('export --web in headless Chromium, offline', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
  });
  afterAll(async () => {
    await browser?.close();
  });

  test('a cgan run: the page draws digits from disk, new noise on a click, the picked class on a change', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-web-'));
    const web = path.join(dir, 'page');
    const e = runCli(['export', tinyRun('cgan', dir, 4), '--web', web]);
    expect(e.stderr).toBe('');
    // moved away from the run folder and the model file: the page needs nothing beside it
    const page = await browser.newPage();
    const blocked: string[] = [];
    await page.route('**/*', (r) => {
      const url = r.request().url();
      if (/^(file|blob|data):/.test(url)) return r.continue();
      blocked.push(url);
      return r.abort();
    });
    fs.renameSync(path.join(web, 'index.html'), path.join(dir, 'alone.html'));
    fs.rmSync(web, { recursive: true });
    await page.goto(`file://${path.join(dir, 'alone.html')}`);
    const first = await grid(page, 1);
    const levels = new Set(first).size;
    expect(levels).toBeGreaterThan(20); // a grid of images, not a blank or flat canvas
    expect(first.filter((v) => v === 255).length).toBeLessThan(first.length * 0.9);
    await page.click('#again');
    const second = await grid(page, 2);
    expect(second).not.toEqual(first);
    await page.selectOption('#digit', '3');
    const third = await grid(page, 3);
    expect(new Set(third).size).toBeGreaterThan(20);
    expect(blocked).toEqual([]);
    expect(await page.textContent('#status')).toBe('');
    await page.close();
  }, 120_000);
});
