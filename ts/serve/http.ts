/**
 * A run's generator over HTTP (node:http): PNG grids and JSON samples from a loaded Generator, health,
 * Prometheus metrics, a bounded queue (503 beyond it), a graceful close, and the swap to a newer
 * checkpoint while the run trains. Prints nothing: what happens is reported through the callbacks.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { CHECKPOINT_FILES, readTrainerState } from '../store/checkpoint';
import { MAX_SEED } from '../util/options';
import { type DeviceName } from '../util/options';
import { type Generator, loadGenerator } from './generator';
import { ServeMetrics } from './metrics';
import { servePage } from './page';

export interface ServeOptions {
  port?: number;
  host?: string;
  device?: DeviceName;
  /** Most images one request may ask for (default 256). */
  maxCount?: number;
  /** Most sampling requests waiting or running; more get 503 with Retry-After (default 64). */
  maxQueue?: number;
  /** The Generator's coalescing (see GeneratorOptions). */
  maxBatch?: number;
  maxWaitMs?: number;
  /** How often trainer.json is checked for a newer checkpoint, in ms (default 1000; 0: never). */
  watchMs?: number;
  /** A newer checkpoint was swapped in (its epoch). */
  onSwap?: (info: { epoch: number | undefined }) => void;
  /** A newer checkpoint could not be loaded (kept serving the old one; tried again every watchMs). */
  onSwapError?: (e: Error) => void;
}

export interface GeneratorServer {
  readonly url: string;
  readonly port: number;
  readonly generator: Generator;
  /** Stops accepting, lets the requests in flight finish, then frees the generator. */
  close(): Promise<void>;
}

/** A 400's body: the parameter and what it allows. */
class BadParameter extends Error {
  constructor(
    readonly parameter: string,
    readonly allowed: string,
    readonly got: string,
  ) {
    super(`${parameter}: expected ${allowed}, got ${JSON.stringify(got)}`);
  }
}

const PARAMS = { png: ['count', 'label', 'seed', 'truncation', 'nrow'], json: ['count', 'label', 'seed', 'truncation'] };

function intParam(q: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  const allowed = `an integer in [${min}, ${max}]`;
  if (!/^\d+$/.test(v)) throw new BadParameter(name, allowed, v);
  const n = Number(v);
  if (n < min || n > max) throw new BadParameter(name, allowed, v);
  return n;
}

/** The sampling parameters of a query, each checked; errors name the parameter and what is allowed. */
function readQuery(q: URLSearchParams, kind: 'png' | 'json', g: Generator, maxCount: number) {
  for (const k of q.keys()) if (!PARAMS[kind].includes(k)) throw new BadParameter(k, `one of the parameters ${PARAMS[kind].join(', ')}`, q.get(k)!);
  const count = intParam(q, 'count', 1, maxCount) ?? Math.min(64, maxCount);
  const label = q.get('label') === null ? undefined : g.classes ? intParam(q, 'label', 0, g.classes - 1) : undefined;
  if (q.get('label') !== null && !g.classes) throw new BadParameter('label', 'nothing: this generator is not conditional', q.get('label')!);
  const seed = intParam(q, 'seed', 0, MAX_SEED);
  const t = q.get('truncation');
  let truncation: number | undefined;
  if (t !== null) {
    if (g.preset.step.noise.dist !== 'normal') throw new BadParameter('truncation', `nothing: this generator's noise is ${g.preset.step.noise.dist}`, t);
    truncation = Number(t);
    if (!(t.trim() !== '' && Number.isFinite(truncation) && truncation > 0)) throw new BadParameter('truncation', 'a finite number > 0', t);
  }
  const nrow = kind === 'png' ? intParam(q, 'nrow', 1, maxCount) : undefined;
  return {
    count,
    seed,
    ...(label !== undefined ? { labels: label } : {}),
    ...(truncation !== undefined ? { truncation } : {}),
    ...(nrow !== undefined ? { nrow } : {}),
  };
}

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const json = (res: http.ServerResponse, status: number, value: unknown, headers?: Record<string, string>) =>
  send(res, status, 'application/json', `${JSON.stringify(value)}\n`, headers);

/** Loads the run's generator and starts serving it; resolves once listening. */
export async function startServer(runDir: string, opts: ServeOptions = {}): Promise<GeneratorServer> {
  const maxCount = opts.maxCount ?? 256;
  const maxQueue = opts.maxQueue ?? 64;
  const metrics = new ServeMetrics();
  const load = () =>
    loadGenerator(runDir, {
      device: opts.device ?? 'cpu',
      ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
      ...(opts.maxWaitMs !== undefined ? { maxWaitMs: opts.maxWaitMs } : {}),
      onBatch: (b) => metrics.batch(b.calls, b.images),
    });
  let current = await load();
  const epochOf = () => {
    try {
      return readTrainerState(runDir).epoch;
    } catch {
      return undefined;
    }
  };
  let epoch = epochOf();
  let sampling = 0; // sampling requests waiting or running, across swaps

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<[string, number]> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: `method ${req.method} is not allowed; use GET` }, { Allow: 'GET, HEAD' });
      return [route, 405];
    }
    if (route === '/healthz') {
      json(res, 200, { status: 'ok', epoch: epoch ?? null, ema: current.ema, queueDepth: sampling });
      return [route, 200];
    }
    if (route === '/metrics') {
      send(res, 200, 'text/plain; version=0.0.4', metrics.text(sampling));
      return [route, 200];
    }
    if (route === '/') {
      send(res, 200, 'text/html; charset=utf-8', servePage(current, maxCount));
      return [route, 200];
    }
    if (route !== '/sample.png' && route !== '/sample.json') {
      json(res, 404, { error: `no route ${route}; routes: /, /sample.png, /sample.json, /healthz, /metrics` });
      return ['other', 404];
    }
    const g = current; // a swap meanwhile does not move this request
    const kind = route === '/sample.png' ? 'png' : 'json';
    let q: ReturnType<typeof readQuery>;
    try {
      q = readQuery(url.searchParams, kind, g, maxCount);
    } catch (e) {
      if (!(e instanceof BadParameter)) throw e;
      json(res, 400, { error: e.message, parameter: e.parameter, allowed: e.allowed });
      return [route, 400];
    }
    if (sampling >= maxQueue) {
      json(res, 503, { error: `overloaded: ${sampling} sampling requests queued (at most ${maxQueue}); retry later` }, { 'Retry-After': '1' });
      return [route, 503];
    }
    sampling++;
    try {
      if (kind === 'png') send(res, 200, 'image/png', await g.png(q));
      else {
        const s = await g.sample(q);
        const pixels = Buffer.from(s.images.buffer, s.images.byteOffset, s.images.byteLength).toString('base64');
        json(res, 200, { shape: s.shape, range: s.range, seed: s.seed, labels: s.labels ?? null, ema: s.ema === true, dtype: 'float32', pixels });
      }
      return [route, 200];
    } finally {
      sampling--;
    }
  };

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    handle(req, res).then(
      ([route, status]) => metrics.request(route, status, (performance.now() - t0) / 1000),
      (e: Error) => {
        if (!res.headersSent) json(res, 500, { error: e.message });
        else res.destroy();
        metrics.request(new URL(req.url ?? '/', 'http://localhost').pathname, 500, (performance.now() - t0) / 1000);
      },
    );
  });

  // The swap: a changed trainer.json means a finished checkpoint (written after its files); the loader
  // verifies each file against its digest, so a half-written one is refused and tried again later.
  const trainerFile = path.join(runDir, CHECKPOINT_FILES.trainer);
  let swapping: Promise<void> | undefined;
  const watchMs = opts.watchMs ?? 1000;
  const swap = async () => {
    try {
      const next = await load();
      const old = current;
      current = next;
      epoch = epochOf();
      metrics.swap();
      opts.onSwap?.({ epoch });
      await old.close(); // its queued and running calls finish first
    } catch (e) {
      opts.onSwapError?.(e as Error);
      // trainer.json may have landed before the file it names (or a copy is under way): try again
      retry = setTimeout(() => {
        retry = undefined;
        swapping = (swapping ?? Promise.resolve()).then(swap);
      }, watchMs).unref();
    }
  };
  let retry: NodeJS.Timeout | undefined;
  const onChange = (now: fs.Stats, prev: fs.Stats) => {
    if (now.mtimeMs === prev.mtimeMs && now.size === prev.size) return;
    clearTimeout(retry);
    swapping = (swapping ?? Promise.resolve()).then(swap);
  };
  if (watchMs > 0) fs.watchFile(trainerFile, { interval: watchMs, persistent: false }, onChange);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    get generator() {
      return current;
    },
    close() {
      closing ??= (async () => {
        fs.unwatchFile(trainerFile, onChange);
        clearTimeout(retry);
        await new Promise<void>((resolve) => {
          server.close(() => resolve()); // waits for the requests in flight
          server.closeIdleConnections();
        });
        await swapping;
        await current.close();
        metrics.close();
      })();
      return closing;
    },
  };
}
