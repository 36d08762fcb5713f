/**
 * The worker thread of a loaded Generator (generator.ts): holds G in eval mode and runs each batch of
 * requests as one forward pass, its ATen ops on the process's training thread (torch.onTrainingThread),
 * while the caller's event loop keeps serving. Messages are plain values (protocol.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Preset } from '../gan/presets';
import { generate, seededInputs } from '../gan/sample';
import { makeGrid } from '../logging/grid';
import { encodePixelImage } from '../logging/png';
import { type Module } from '../nn/module';
import { loadGeneratorModule } from '../store/generator';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { type BatchReply, type BatchRequest, errorOf, type WorkerInit, type WorkerReady } from './protocol';

/** Rows of a forward pass come in multiples of this (zero rows appended): see padRows. */
export const ROW_QUANTUM = 8;

/**
 * The rows a forward pass of `n` images runs: n rounded up to a multiple of ROW_QUANTUM. CPU GEMM
 * kernels compute the rows of a partial block (M = 1, the tail of M = 5) with another summation order
 * than full blocks, so an image's bits would depend on how many others share its batch; padded, every
 * real row sits in a full block, and a call's images equal what it gets alone whatever it is batched
 * with (bit for bit on the shapes test/serve/generator.test.ts checks; a GEMM may also pick its kernel by
 * batch size, so in general within float rounding).
 */
export function padRows(n: number): number {
  return Math.ceil(n / ROW_QUANTUM) * ROW_QUANTUM;
}

/**
 * fn under the process's draw lock (WorkerInit.lock): one worker at a time draws from the global
 * generator (a batch's seeded noise, a loading G's init).
 */
function locked<T>(buffer: SharedArrayBuffer, fn: () => T): T {
  const lock = new Int32Array(buffer);
  while (Atomics.compareExchange(lock, 0, 0, 1) !== 0) Atomics.wait(lock, 0, 1);
  try {
    return fn();
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0, 1);
  }
}

function forward(G: Module, preset: Preset, init: WorkerInit, batch: BatchRequest): BatchReply {
  return locked(init.lock, () => forwardLocked(G, preset, init, batch));
}

function forwardLocked(G: Module, preset: Preset, init: WorkerInit, batch: BatchRequest): BatchReply {
  const classes = preset.step.conditioning?.classes ?? 0;
  return torch.onTrainingThread(() =>
    torch.scope(() => {
      const ins = batch.requests.map((r) => seededInputs(preset, r.count, r.seed, r.labels, r.truncation));
      const total = batch.requests.reduce((s, r) => s + r.count, 0);
      const pad = padRows(total) - total;
      const zs = ins.map((i) => i.z);
      if (pad) zs.push(torch.zeros([pad, ...zs[0]!.shape.slice(1)]));
      let y: Tensor | undefined;
      if (classes) {
        const ys = ins.map((i) => i.y!);
        if (pad) ys.push(torch.zeros([pad], { dtype: 'int64' }));
        y = torch.cat(ys, 0);
      }
      const images = generate(G, torch.cat(zs, 0), init.device, y && { y, classes });
      const labels = y ? Array.from(y.toTypedArray() as BigInt64Array, Number) : undefined;
      const per = images.length / (total + pad);
      const shape = init.imageShape;
      let at = 0;
      const results = batch.requests.map((r) => {
        const own = images.slice(at * per, (at + r.count) * per); // a copy: its buffer is transferred
        const out = {
          images: own,
          ...(labels ? { labels: labels.slice(at, at + r.count) } : {}),
          ...(r.nrow !== undefined
            ? {
                png: new Uint8Array(
                  encodePixelImage(makeGrid({ data: own, shape: [r.count, ...shape] }, { nrow: r.nrow, padding: 2, range: preset.normalize })),
                ),
              }
            : {}),
        };
        at += r.count;
        return out;
      });
      return { type: 'done', id: batch.id, results };
    }),
  );
}

function main(): void {
  const port = parentPort;
  if (!port) return;
  const init = workerData as WorkerInit;
  let G: Module;
  let preset: Preset;
  try {
    preset = init.preset; // resolved by the caller (a run folder's config.json or a named preset)
    // Building G draws its default init from the global generator before the checkpoint overwrites it:
    // under the lock, or a generator loading (a swap) takes numbers another one's seeded batch is drawing.
    G = locked(init.lock, () => loadGeneratorModule(init.source, preset, init.device, init.ema));
    G.eval();
  } catch (e) {
    port.postMessage({ type: 'error', error: errorOf(e) });
    return;
  }
  port.postMessage({ type: 'ready' } satisfies WorkerReady);
  port.on('message', (batch: BatchRequest) => {
    let reply: BatchReply | { type: 'failed'; id: number; error: ReturnType<typeof errorOf> };
    try {
      reply = forward(G, preset, init, batch);
    } catch (e) {
      reply = { type: 'failed', id: batch.id, error: errorOf(e) };
    }
    const transfer = reply.type === 'done' ? reply.results.flatMap((r) => [r.images.buffer, ...(r.png ? [r.png.buffer] : [])]) : [];
    port.postMessage(reply, transfer as ArrayBuffer[]);
  });
}

main();
