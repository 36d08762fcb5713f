/** The server's counters in Prometheus' text exposition format (version 0.0.4). */
import { createHistogram } from 'node:perf_hooks';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LOOP_RESOLUTION_MS = 10;
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (const [i, b] of this.buckets.entries()) if (v <= b) this.counts[i]!++;
  }
  lines(name: string): string[] {
    return [
      ...this.buckets.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${name}_bucket{le="+Inf"} ${this.count}`,
      `${name}_sum ${this.sum}`,
      `${name}_count ${this.count}`,
    ];
  }
}

export class ServeMetrics {
  readonly #requests = new Map<string, number>();
  #errors = 0;
  #swaps = 0;
  readonly #latency = new Histogram(LATENCY_BUCKETS);
  readonly #batchImages = new Histogram(BATCH_BUCKETS);
  readonly #batchCalls = new Histogram(BATCH_BUCKETS);
  // The event loop's delay: how late a timer due every LOOP_RESOLUTION_MS runs, in ns (at least 1, as
  // the histogram takes). Own timer rather than monitorEventLoopDelay: its reset() drops the interval
  // running at a scrape, and a delay that spans a scrape would go unseen.
  readonly #loop = createHistogram();
  #tick = performance.now();
  readonly #timer = setInterval(() => {
    const now = performance.now();
    this.#loop.record(Math.max(1, Math.round((now - this.#tick - LOOP_RESOLUTION_MS) * 1e6)));
    this.#tick = now;
  }, LOOP_RESOLUTION_MS).unref();

  /** Stops sampling the event loop (the server closed). */
  close(): void {
    clearInterval(this.#timer);
  }

  /** One answered request: its route, status and seconds taken. */
  request(route: string, status: number, seconds: number): void {
    const key = `route="${route}",code="${status}"`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    if (status >= 400) this.#errors++;
    this.#latency.observe(seconds);
  }

  batch(calls: number, images: number): void {
    this.#batchCalls.observe(calls);
    this.#batchImages.observe(images);
  }

  swap(): void {
    this.#swaps++;
  }

  /** How late the event loop ran its 10 ms sampling timer since the previous scrape; then a new interval starts. */
  #loopLines(): string[] {
    const h = this.#loop; // an empty histogram reads 0 for these
    const out: string[] = [];
    for (const [name, help, v] of [
      ['p50', 'median', h.percentile(50)],
      ['p99', '99th percentile', h.percentile(99)],
      ['max', 'maximum', h.max],
    ] as const) {
      out.push(
        `# HELP ltg_event_loop_delay_${name}_seconds The ${help} of the event loop's delay (how late a timer ran) since the previous scrape.`,
        `# TYPE ltg_event_loop_delay_${name}_seconds gauge`,
        `ltg_event_loop_delay_${name}_seconds ${v / 1e9}`,
      );
    }
    h.reset();
    return out;
  }

  /** The exposition text; `queueDepth` is read at scrape time. */
  text(queueDepth: number): string {
    const out = ['# HELP ltg_requests_total HTTP requests answered, by route and status code.', '# TYPE ltg_requests_total counter'];
    for (const [k, v] of this.#requests) out.push(`ltg_requests_total{${k}} ${v}`);
    out.push(
      '# HELP ltg_errors_total HTTP requests answered with a status >= 400.',
      '# TYPE ltg_errors_total counter',
      `ltg_errors_total ${this.#errors}`,
      '# HELP ltg_request_duration_seconds Time from a request to its answer.',
      '# TYPE ltg_request_duration_seconds histogram',
      ...this.#latency.lines('ltg_request_duration_seconds'),
      '# HELP ltg_batch_images Images per forward pass of the generator (coalesced calls).',
      '# TYPE ltg_batch_images histogram',
      ...this.#batchImages.lines('ltg_batch_images'),
      '# HELP ltg_batch_calls Calls coalesced into one forward pass.',
      '# TYPE ltg_batch_calls histogram',
      ...this.#batchCalls.lines('ltg_batch_calls'),
      '# HELP ltg_queue_depth Sampling calls waiting or running.',
      '# TYPE ltg_queue_depth gauge',
      `ltg_queue_depth ${queueDepth}`,
      '# HELP ltg_generator_swaps_total Newer checkpoints swapped in.',
      '# TYPE ltg_generator_swaps_total counter',
      `ltg_generator_swaps_total ${this.#swaps}`,
      ...this.#loopLines(),
      '# HELP process_resident_memory_bytes Resident memory size in bytes.',
      '# TYPE process_resident_memory_bytes gauge',
      `process_resident_memory_bytes ${process.memoryUsage.rss()}`,
    );
    return `${out.join('\n')}\n`;
  }
}
