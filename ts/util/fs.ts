/**
 * The one atomic write of the package (safetensors, checkpoints, run files, logs, downloads): the
 * bytes go to a temporary file in the target's folder, which is fsync'ed, renamed over the target,
 * and the folder fsync'ed. A reader sees the old file or the complete new one, never a partial
 * write, and after a crash the new file is either fully there or not at all. On any failure the
 * temporary file is removed. Temporary files are named `.<name>.<pid>.<n>.tmp` (see isTempFile).
 *
 * Folders are created by one helper, ensureDir, and every failure is a FileError naming the path
 * and the reason in words (a full disk says "no space left on device (ENOSPC)" and the file).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let tmpCounter = 0;

export type FileData = string | Uint8Array | readonly Uint8Array[];

/** A file or folder that could not be created or written; `code` is the errno code (ENOSPC, EACCES, ...). */
export class FileError extends Error {
  override readonly name = 'FileError';
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly path: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
  }
}

const codeOf = (e: unknown): string | undefined => (e as NodeJS.ErrnoException)?.code;

/** "no space left on device (ENOSPC)": Node's errno text without the syscall (which names no path for fd writes). */
function reason(e: unknown): string {
  const code = codeOf(e);
  const msg = (e as Error)?.message ?? String(e);
  const text = code ? (new RegExp(`^${code}: ([^,]+)`).exec(msg)?.[1] ?? msg) : msg;
  return code && !text.includes(code) ? `${text} (${code})` : text;
}

/** Rethrows `e` as a FileError "cannot <action> <file>: <reason>" (FileErrors pass through). */
function fileError(e: unknown, action: string, file: string): FileError {
  if (e instanceof FileError) return e;
  return new FileError(`cannot ${action} ${file}: ${reason(e)}`, codeOf(e), file, e);
}

/**
 * @internal The writes the atomic write makes, replaceable in tests (to simulate a full disk:
 * node:fs's own functions cannot be spied on).
 */
export const atomicWriteFs = {
  write: (fd: number, data: Uint8Array, offset: number, length: number): number => fs.writeSync(fd, data, offset, length),
};

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Makes sure `dir` is a writable folder, creating it and its missing parents; returns its absolute
 * path. `what` names it in errors ("save folder", "run folder"). The parent chain is walked here,
 * one non-recursive mkdir per missing folder, because Node's recursive mkdir loops forever where a
 * file system answers ENOENT for a folder whose parent exists (/proc, /sys). Refused, as a
 * FileError naming the path: an existing ancestor that is not a folder or not writable, and any
 * mkdir that fails.
 */
export function ensureDir(dir: string, what = 'folder'): string {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let cur = abs;
  for (;;) {
    let st: fs.Stats;
    try {
      st = fs.statSync(cur);
    } catch (e) {
      const code = codeOf(e);
      const parent = path.dirname(cur);
      // ENOTDIR: some ancestor is a file, found as the walk goes up
      if ((code === 'ENOENT' || code === 'ENOTDIR') && parent !== cur) {
        missing.push(cur);
        cur = parent;
        continue;
      }
      throw new FileError(`cannot create ${what} ${dir}: cannot access ${cur}: ${reason(e)}`, code, cur, e);
    }
    if (!st.isDirectory()) throw new FileError(`cannot create ${what} ${dir}: ${cur} exists and is not a folder`, 'ENOTDIR', cur);
    break;
  }
  try {
    fs.accessSync(cur, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    const which = missing.length ? `${cur} (the nearest existing folder)` : cur;
    throw new FileError(`cannot ${missing.length ? 'create' : 'write into'} ${what} ${dir}: ${which} is not writable: ${reason(e)}`, codeOf(e), cur, e);
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) {
      const code = codeOf(e);
      if (code === 'EEXIST' && isDirectory(d)) continue; // created meanwhile by someone else
      // ENOENT although the parent exists: a file system that takes no new folders (/proc, /sys)
      const why = code === 'ENOENT' ? `the file system of ${path.dirname(d)} does not allow new folders (ENOENT)` : reason(e);
      throw new FileError(`cannot create ${what} ${dir}: mkdir ${d}: ${why}`, code, d, e);
    }
  }
  return abs;
}

function tempPath(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${++tmpCounter}.tmp`);
}

/** Whether `name` (a base name) is a temporary file of `target` (a base name) written by writeTempFile. */
export function isTempFile(name: string, target?: string): boolean {
  const m = /^\.(.+)\.\d+\.\d+\.tmp$/.exec(name);
  return !!m && (target === undefined || m[1] === target);
}

/**
 * Removes the temporary files in `dir` (not below it) left by writers that were killed, of the
 * targets named (default: of every file). Returns the paths removed. Only for folders with one
 * writer, at a point where it is not writing: it cannot tell an orphan from a live writer's file.
 */
export function removeTempFiles(dir: string, targets?: readonly string[]): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return []; // no folder, nothing left behind
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!(targets ? targets.some((t) => isTempFile(name, t)) : isTempFile(name))) continue;
    const p = path.join(dir, name);
    try {
      fs.rmSync(p, { force: true });
      removed.push(p);
    } catch (e) {
      throw fileError(e, 'remove the leftover temporary file', p);
    }
  }
  return removed;
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
 * The caller renames it into place (or removes it). Nothing is left behind when this throws; the
 * error (a FileError) names `file`.
 */
export function writeTempFile(file: string, data: FileData): string {
  const tmp = tempPath(file);
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'wx', 0o644);
  } catch (e) {
    throw fileError(e, 'write', file);
  }
  try {
    for (const chunk of chunksOf(data)) {
      let off = 0;
      while (off < chunk.byteLength) off += atomicWriteFs.write(fd, chunk, off, chunk.byteLength - off);
    }
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw fileError(e, 'write', file);
  }
  fs.closeSync(fd);
  return tmp;
}

/** The rename of a finished temporary file over its target; a failure removes the temporary file. */
function commit(tmp: string, file: string): void {
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw fileError(e, 'write', file);
  }
}

/** Refuses a target that is a folder up front, with a message that says so (the rename would say EISDIR about the temporary file). */
function checkNotDir(file: string): void {
  if (isDirectory(file)) throw new FileError(`cannot write ${file}: it is a folder (EISDIR)`, 'EISDIR', file);
}

/** Writes `data` to `file` atomically and durably (see above). Missing parent folders are created (ensureDir). */
export function writeFileAtomic(file: string, data: FileData): void {
  const dir = ensureDir(path.dirname(path.resolve(file)));
  checkNotDir(file);
  commit(writeTempFile(file, data), file);
  fsyncDir(dir);
}

/** writeFileAtomic without blocking the event loop (for large downloads). */
export async function writeFileAtomicAsync(file: string, data: FileData): Promise<void> {
  const dir = ensureDir(path.dirname(path.resolve(file))); // a few syscalls: synchronous is fine
  checkNotDir(file);
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
    throw fileError(e, 'write', file);
  }
  fsyncDir(dir);
}
