/** The server's counters in Prometheus' text exposition format (version 0.0.4). */

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
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
    );
    return `${out.join('\n')}\n`;
  }
}
