/** The messages between a Generator (generator.ts) and its worker thread (generator-worker.ts): plain values. */
import { type Preset } from '../gan/presets';
import { type DeviceName } from '../util/options';

export interface WorkerInit {
  source: string;
  preset: Preset;
  device: DeviceName;
  ema: boolean;
  /** One image's shape: [H, W] (grayscale) or [C, H, W]. */
  imageShape: number[];
  /**
   * The process's one lock (an Int32Array's SharedArrayBuffer) around a batch's seeded draws and forward
   * and around loading G (its default init draws too): the global generator is the process's, so two
   * workers drawing at once would take each other's numbers.
   */
  lock: SharedArrayBuffer;
}

export interface WorkerReady {
  type: 'ready';
}

/** One call's share of a batch: its own seed, so its noise does not depend on the others. */
export interface SampleRequest {
  count: number;
  seed: number;
  labels?: number | number[];
  truncation?: number;
  /** Set: the call wants a PNG grid with this many images per row. */
  nrow?: number;
}

export interface BatchRequest {
  id: number;
  requests: SampleRequest[];
}

export interface SampleResult {
  images: Float32Array;
  labels?: number[];
  png?: Uint8Array;
}

export interface BatchReply {
  type: 'done';
  id: number;
  results: SampleResult[];
}

/** An error as it crosses threads: its class name and message. */
export interface WorkerError {
  name: string;
  message: string;
}

export function errorOf(e: unknown): WorkerError {
  return e instanceof Error ? { name: e.name, message: e.message } : { name: 'Error', message: String(e) };
}

/** The error again, of its class where it is one of JavaScript's own (TypeError, RangeError). */
export function errorFrom(e: WorkerError): Error {
  const Ctor = e.name === 'TypeError' ? TypeError : e.name === 'RangeError' ? RangeError : Error;
  const err = new Ctor(e.message);
  if (Ctor === Error && e.name !== 'Error') err.name = e.name;
  return err;
}
