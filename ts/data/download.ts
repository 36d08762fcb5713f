/**
 * Downloads gzip-compressed IDX files from a list of mirrors into a cache directory.
 *
 * For each file, mirrors are tried in order (`${mirror}${file}.gz`, Node's global fetch). A mirror
 * is skipped, its reason kept, when the request fails (connection refused, timeout, HTTP error) or
 * the bytes are bad (corrupt gzip, or a decompressed SHA-256 other than the expected one). The
 * first good copy is written decompressed and atomically: a temporary file in the same directory,
 * fsync, rename. When every mirror fails, one DataError (code DOWNLOAD_FAILED) lists each mirror
 * with its reason. Progress goes to an optional callback; nothing is printed.
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { writeFileAtomicAsync } from '../util/fs';
import { DataError, type MirrorFailure, describeError } from './errors';
import { isGzip, maybeGunzip } from './idx';

export interface DownloadProgress {
  /** Uncompressed file name, e.g. 'train-images-idx3-ubyte'. */
  file: string;
  /** URL being fetched. */
  url: string;
  /** Bytes received so far (compressed, as sent by the server). */
  receivedBytes: number;
  /** Content-Length when the server sent one, else null. */
  totalBytes: number | null;
}

export interface DownloadOptions {
  /** Base URLs tried in order; `${base}${file}.gz` is fetched (a missing trailing '/' is added). */
  mirrors: readonly string[];
  /** Directory the decompressed file is written into (created when missing). */
  dir: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Per-mirror limit for the whole request in milliseconds (default 300000). */
  timeoutMs?: number;
  /** fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

export interface DownloadResult {
  /** Path of the written, verified, decompressed file. */
  path: string;
  /** URL it came from. */
  url: string;
  /** Mirrors tried before it, and why they were skipped. */
  failures: MirrorFailure[];
}

/** SHA-256 (hex) of some bytes. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `${base}${file}.gz`, adding a '/' to the base when it lacks one. */
export function mirrorUrl(base: string, file: string): string {
  return `${(base.endsWith('/') ? base : `${base}/`) + file}.gz`;
}

/** Thrown from the progress callback: not a mirror's fault, so it is rethrown as is. */
class CallbackError {
  constructor(readonly error: unknown) {}
}

/**
 * Downloads `${file}.gz` from the first mirror that serves bytes whose decompressed SHA-256 is
 * `sha256`, and writes them decompressed to `<dir>/<file>`.
 */
export async function downloadIdxFile(file: string, sha256: string, opts: DownloadOptions): Promise<DownloadResult> {
  const fetchImpl = opts.fetch ?? globalThis.fetch;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const failures: MirrorFailure[] = [];
  if (opts.mirrors.length === 0) {
    throw new DataError('DOWNLOAD_FAILED', `cannot download ${file}: no mirrors given`, { file, failures });
  }
  for (const base of opts.mirrors) {
    const url = mirrorUrl(base, file);
    let bytes: Uint8Array;
    try {
      const gz = await fetchBytes(fetchImpl, url, file, timeoutMs, opts.onProgress);
      bytes = maybeGunzip(gz, url);
      const got = sha256Hex(bytes);
      if (got !== sha256) {
        const what = isGzip(gz) ? 'decompressed content' : 'content (not gzip)';
        throw new Error(`SHA-256 mismatch: ${what} has ${got}, expected ${sha256}`);
      }
    } catch (err) {
      if (err instanceof CallbackError) throw err.error;
      failures.push({ url, reason: err instanceof DataError ? err.message.replace(`${url}: `, '') : describeError(err) });
      continue;
    }
    const dest = path.join(opts.dir, file);
    await writeFileAtomicAsync(dest, bytes);
    return { path: dest, url, failures };
  }
  const lines = failures.map((f) => `  - ${f.url}: ${f.reason}`).join('\n');
  throw new DataError('DOWNLOAD_FAILED', `could not download ${file}; every mirror failed (${failures.length} tried):\n${lines}`, { file, failures });
}

async function fetchBytes(
  fetchImpl: typeof fetch,
  url: string,
  file: string,
  timeoutMs: number,
  onProgress: DownloadOptions['onProgress'],
): Promise<Uint8Array> {
  const res = await fetchImpl(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
  }
  const lengthHeader = res.headers.get('content-length');
  const totalBytes = lengthHeader !== null && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : null;
  const report = (receivedBytes: number) => {
    if (!onProgress) return;
    try {
      onProgress({ file, url, receivedBytes, totalBytes });
    } catch (err) {
      throw new CallbackError(err);
    }
  };
  if (!res.body) {
    const buf = new Uint8Array(await res.arrayBuffer());
    report(buf.length);
    return buf;
  }
  const chunks: Uint8Array[] = [];
  let received = 0;
  report(0);
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.length;
      report(received);
    }
  } catch (err) {
    await reader.cancel().catch(() => undefined);
    throw err;
  }
  if (totalBytes !== null && received !== totalBytes) {
    throw new Error(`incomplete body: received ${received} of ${totalBytes} bytes`);
  }
  const out = new Uint8Array(received);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
