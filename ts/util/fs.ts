/**
 * The one atomic write of the package (safetensors, checkpoints, run files, logs, downloads): the
 * bytes go to a temporary file in the target's folder, which is fsync'ed, renamed over the target,
 * and the folder fsync'ed. A reader sees the old file or the complete new one, never a partial
 * write, and after a crash the new file is either fully there or not at all. On any failure the
 * temporary file is removed. Temporary files are named `.<name>.<pid>.<n>.tmp` (see isTempFile).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let tmpCounter = 0;

export type FileData = string | Uint8Array | readonly Uint8Array[];

function tempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
}

/** Whether `name` (a base name) is a temporary file of `target` (a base name) written by writeTempFile. */
export function isTempFile(name: string, target?: string): boolean {
  const m = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(name);
  return !!m && (target === undefined || m[1] === target);
}

function chunksOf(data: FileData): readonly Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data)];
  return data instanceof Uint8Array ? [data] : data;
}

/** Best-effort fsync of a folder (makes a rename in it durable; not every file system supports it). */
export function fsyncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // some file systems do not support fsync on directories; the rename itself is still atomic
  }
}

/**
 * Writes `data` completely to a new temporary file beside `file` and fsyncs it; returns its path.
 * The caller renames it into place (or removes it). Nothing is left behind when this throws.
 */
export function writeTempFile(file: string, data: FileData): string {
  const tmp = tempPath(file);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.byteLength) off += fs.writeSync(fd, chunk, off, chunk.byteLength - off);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  return tmp;
}

/** Writes `data` to `file` atomically and durably (see above). Missing parent folders are created. */
export function writeFileAtomic(file: string, data: FileData): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  const tmp = writeTempFile(file, data);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** writeFileAtomic without blocking the event loop (for large downloads). */
export async function writeFileAtomicAsync(file: string, data: FileData): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  await fs.promises.mkdir(dir, { recursive: true });
  const tmp = tempPath(file);
  try {
    const fh = await fs.promises.open(tmp, 'wx', 0o644);
    try {
      for (const chunk of chunksOf(data)) await fh.writeFile(chunk); // writeFile loops until all is written
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  fsyncDir(dir);
}
