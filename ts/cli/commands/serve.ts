/** `libtorch-gan serve`: a run's generator over HTTP; SIGTERM (or Ctrl-C) drains and exits 0. */
import { startServer } from '../../serve/http';
import { printable } from '../../util/printable';
import { BIN, deviceFlag, EXIT, intFlag, parseCommandArgs, stringFlag, UsageError, writeLine, type CliIO } from './common';

const NAME = 'serve';

export const SERVE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  device: { type: 'string' },
  'max-count': { type: 'string' },
  'max-queue': { type: 'string' },
  'max-batch': { type: 'string' },
  'max-wait-ms': { type: 'string' },
  'watch-ms': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const SERVE_HELP = `Usage: ${BIN} serve RUN_DIR [options]

Serves a run's generator over HTTP (node:http), loaded once; concurrent requests are batched.
  GET /sample.png?count=&label=&seed=&truncation=&nrow=   a PNG grid
  GET /sample.json?count=&label=&seed=&truncation=        shape, range, labels, seed, pixels (base64 float32)
  GET /healthz, GET /metrics (Prometheus), GET / (a page drawing grids from /sample.png)
Bad parameters get 400 naming the parameter; more than --max-queue requests waiting get 503 with
Retry-After. A newer checkpoint in RUN_DIR (a run still training) is swapped in, and said. SIGTERM or
Ctrl-C: stops accepting, finishes the requests in flight, exits 0.

Options:
  --port N           port (default 8080; 0: any free one, printed)
  --host HOST        address to listen on (default 127.0.0.1)
  --device DEVICE    auto | cpu | cuda (default cpu)
  --max-count N      most images per request (default 256)
  --max-queue N      most sampling requests waiting or running (default 64)
  --max-batch N      most images per coalesced forward pass (default 256)
  --max-wait-ms N    how long a request waits for others to share its forward pass (default 0: requests
                     arriving together or while a batch runs share one anyway)
  --watch-ms N       how often RUN_DIR/trainer.json is checked for a new checkpoint (default 1000; 0: never)
  -h, --help         show this help`;

export async function serveCommand(args: string[], io: CliIO): Promise<number> {
  const { values: v, positionals } = parseCommandArgs(NAME, args, SERVE_OPTIONS, { positionals: 1 });
  if (v.help) {
    writeLine(io.stdout, SERVE_HELP);
    return EXIT.OK;
  }
  const runDir = positionals[0];
  if (!runDir) throw new UsageError('missing RUN_DIR (the run folder to serve, e.g. runs/run-1)', NAME);
  const port = intFlag(NAME, 'port', v.port, 0, 65535) ?? 8080;
  const host = stringFlag(NAME, 'host', v.host, 'an address') ?? '127.0.0.1';
  const device = deviceFlag(NAME, v.device, io, 'cpu');
  const maxCount = intFlag(NAME, 'max-count', v['max-count'], 1) ?? 256;
  const maxQueue = intFlag(NAME, 'max-queue', v['max-queue'], 1) ?? 64;
  const maxBatch = intFlag(NAME, 'max-batch', v['max-batch'], 1) ?? 256;
  const maxWaitMs = intFlag(NAME, 'max-wait-ms', v['max-wait-ms'], 0) ?? 0;
  const watchMs = intFlag(NAME, 'watch-ms', v['watch-ms'], 0) ?? 1000;
  const server = await startServer(runDir, {
    port,
    host,
    device,
    maxCount,
    maxQueue,
    maxBatch,
    maxWaitMs,
    watchMs,
    onSwap: ({ epoch }) => writeLine(io.stdout, `swapped to the newer checkpoint${epoch !== undefined ? ` (epoch ${epoch})` : ''}`),
    onSwapError: (e) => writeLine(io.stderr, `kept the current checkpoint: the newer one did not load: ${e.message}`),
  });
  writeLine(io.stdout, `serving ${printable(runDir)}${server.generator.ema ? ' (EMA generator)' : ''} on ${server.url}`);
  // Only the CLI installs signal handlers: the library never does.
  let offInterrupt: (() => void) | undefined;
  let onTerm: (() => void) | undefined;
  await new Promise<void>((resolve) => {
    onTerm = resolve;
    process.once('SIGTERM', onTerm);
    offInterrupt = io.onInterrupt?.(resolve);
  });
  process.off('SIGTERM', onTerm!);
  offInterrupt?.();
  writeLine(io.stdout, 'stopping: finishing the requests in flight');
  await server.close();
  writeLine(io.stdout, 'stopped');
  return EXIT.OK;
}
