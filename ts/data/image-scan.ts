/**
 * The scan of an image folder: its classes and the files to read, in order, without opening any file.
 * Only regular files qualify; symbolic links are followed without loops or duplicates (each folder and
 * file by device and inode, read once, under the first class in sorted order; the repeats are listed).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { printable } from '../util/printable';
import { DataError, describeError } from './errors';
import { mapPool } from '../util/map-pool';

/** Why a file was left out: unreadable, not a regular file (FIFO, device, socket), over maxFileBytes, or not an image. */
export type SkipKind = 'unreadable' | 'not-a-file' | 'too-large' | 'undecodable';

/** A file or folder reached a second time (through a symbolic or hard link): read once, as `first`. */
export interface DuplicatePath {
  readonly path: string;
  readonly first: string;
}

/** Extensions recognised (compared lower-cased). */
export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg'];
/** Labels are uint8. */
const MAX_CLASSES = 256;
/** Files stat'ed at once while scanning. */
const STAT_CONCURRENCY = 32;
const EXT_LIST = IMAGE_EXTENSIONS.join(', ');
const mib = (bytes: number) => (bytes % (1 << 20) === 0 ? `${bytes / (1 << 20)} MiB` : `${bytes} bytes`);

export type Skip = { reason: string; kind: SkipKind };

export interface Entry {
  file: string;
  label: number;
  /** Known unreadable from the scan (not a regular file, too large, no stat): never opened. */
  skip?: Skip;
}

/** What the scan has met so far (device:inode of folders and files, with the path first met), and the repeats. */
interface Seen {
  dirs: Map<string, string>;
  files: Map<string, string>;
  duplicates: DuplicatePath[];
}

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const isImageName = (name: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(name).toLowerCase());
const idOf = (st: fs.Stats): string => `${st.dev}:${st.ino}`;

/** What a non-regular file is, in words. */
function typeName(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a regular file';
}

export const notAFile = (st: fs.Stats): Skip => ({ reason: `not a regular file: ${typeName(st)}`, kind: 'not-a-file' });
export const tooLarge = (bytes: number, max: number): Skip => ({
  reason: `${bytes} bytes, more than the ${mib(max)} read from one file (maxFileBytes)`,
  kind: 'too-large',
});

/** The class names and the files to read, in order; throws for a bad root or layout. */
export async function scanRoot(root: string, maxBytes: number): Promise<{ classes: string[]; entries: Entry[]; duplicates: DuplicatePath[] }> {
  let st: fs.Stats;
  const shownRoot = printable(root);
  try {
    st = await fs.promises.stat(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DataError('NOT_FOUND', `image folder ${shownRoot} does not exist: give a folder of ${EXT_LIST} files, or one subfolder of them per class`, {
        file: root,
      });
    }
    throw new DataError('IO', `image folder ${shownRoot}: cannot read (${describeError(err)})`, { file: root, cause: err });
  }
  if (!st.isDirectory()) {
    throw new DataError('NOT_FOUND', `image folder ${shownRoot} is not a folder: give a folder of ${EXT_LIST} files, or one subfolder of them per class`, {
      file: root,
    });
  }
  // the root counts as met: a link back to it from a class folder would read every class again
  const seen: Seen = { dirs: new Map([[idOf(st), root]]), files: new Map(), duplicates: [] };
  const top = await listDir(root);
  const images = top.files.filter(isImageName).sort(byCodeUnits);
  const dirs = top.dirs.sort(byCodeUnits);
  if (images.length > 0 && dirs.length > 0) {
    throw new DataError(
      'BAD_LAYOUT',
      `image folder ${shownRoot} holds both image files (${sample(images)}) and subfolders (${sample(dirs)}): ` +
        'put every image in a class subfolder, or have no subfolders (unlabelled images)',
      { file: root },
    );
  }
  if (dirs.length === 0) {
    if (images.length === 0) {
      const others = top.files.length > 0 ? `; ignored ${top.files.length} other files (${sample(top.files.sort(byCodeUnits))})` : '';
      throw new DataError(
        'NO_IMAGES',
        `no images in ${shownRoot}: looked for ${EXT_LIST} files (any case, hidden files ignored) and class subfolders${others}`,
        {
          file: root,
        },
      );
    }
    const entries = await classEntries(
      images.map((f) => path.join(root, f)),
      0,
      seen,
      maxBytes,
    );
    return { classes: [], entries, duplicates: seen.duplicates };
  }
  if (dirs.length > MAX_CLASSES) {
    throw new DataError(
      'TOO_MANY_CLASSES',
      `image folder ${shownRoot} has ${dirs.length} class subfolders; at most ${MAX_CLASSES} are supported (labels are uint8)`,
      { file: root },
    );
  }
  const entries: Entry[] = [];
  const empty: string[] = [];
  for (let label = 0; label < dirs.length; label++) {
    const dir = path.join(root, dirs[label]!);
    const files = (await walkImages(dir, seen)).sort(byCodeUnits);
    const found = await classEntries(files, label, seen, maxBytes);
    if (found.length === 0) {
      // a class folder that is another one reached through a link: say which
      const again = seen.duplicates.find((d) => d.path === dir);
      empty.push(again ? `${dirs[label]!} (the folder ${path.relative(root, again.first) || '.'} again, through a symbolic link)` : dirs[label]!);
    }
    entries.push(...found);
  }
  if (empty.length > 0) {
    throw new DataError(
      'NO_IMAGES',
      `class subfolder${empty.length > 1 ? 's' : ''} ${sample(empty, 10)} of ${shownRoot} hold${empty.length > 1 ? '' : 's'} no images ` +
        `(looked for ${EXT_LIST} files, any case, hidden files ignored; a file or folder met before is read once, under its first class): add images or remove the folder`,
      { file: root },
    );
  }
  return { classes: dirs, entries, duplicates: seen.duplicates };
}

/**
 * The entries of one class from its image paths (sorted): each stat'ed (links followed) without being
 * opened; a file met before (same device and inode, under this class or an earlier one) becomes a
 * duplicate; one that is not a regular file, or larger than `maxBytes`, is an entry skipped unread.
 */
async function classEntries(files: string[], label: number, seen: Seen, maxBytes: number): Promise<Entry[]> {
  const stats = await mapPool(files, STAT_CONCURRENCY, (f) => fs.promises.stat(f).catch((err: unknown) => err as Error));
  const out: Entry[] = [];
  files.forEach((file, i) => {
    const st = stats[i]!;
    if (st instanceof Error) {
      // a dangling link or a file that went away: its read error, as before
      out.push({ file, label, skip: { reason: `cannot read file (${describeError(st)})`, kind: 'unreadable' } });
      return;
    }
    if (!st.isFile()) {
      out.push({ file, label, skip: notAFile(st) });
      return;
    }
    const first = seen.files.get(idOf(st));
    if (first !== undefined) {
      seen.duplicates.push({ path: file, first });
      return;
    }
    seen.files.set(idOf(st), file);
    out.push(st.size > maxBytes ? { file, label, skip: tooLarge(st.size, maxBytes) } : { file, label });
  });
  return out;
}

/** Up to `max` names (escaped for a terminal), then how many more. */
function sample(names: readonly string[], max = 3): string {
  const more = names.length > max ? `, and ${names.length - max} more` : '';
  return names.slice(0, max).map(printable).join(', ') + more;
}

/** Visible files and folders of `dir` (names); symbolic links count as what they point to. */
async function listDir(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  let dirents: fs.Dirent[];
  try {
    dirents = await fs.promises.readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new DataError('IO', `image folder ${printable(dir)}: cannot list (${describeError(err)})`, { file: dir, cause: err });
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const d of dirents) {
    if (d.name.startsWith('.')) continue;
    let isDir = d.isDirectory();
    if (d.isSymbolicLink()) {
      try {
        isDir = (await fs.promises.stat(path.join(dir, d.name))).isDirectory();
      } catch {
        isDir = false; // a broken link (or a link loop) to an image is then skipped with its read error
      }
    }
    if (isDir) dirs.push(d.name);
    else files.push(d.name);
  }
  return { files, dirs };
}

/**
 * Image files under `dir`, recursively (absolute paths), subfolders in sorted order. A folder met before
 * (device and inode in `seen`, this class's or an earlier one's) is not entered again: no link loop, and
 * no class reads another's images.
 */
async function walkImages(dir: string, seen: Seen): Promise<string[]> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(dir);
  } catch (err) {
    throw new DataError('IO', `image folder ${printable(dir)}: cannot read (${describeError(err)})`, { file: dir, cause: err });
  }
  const first = seen.dirs.get(idOf(st));
  if (first !== undefined) {
    seen.duplicates.push({ path: dir, first });
    return [];
  }
  seen.dirs.set(idOf(st), dir);
  const { files, dirs } = await listDir(dir);
  const out = files.filter(isImageName).map((f) => path.join(dir, f));
  for (const d of dirs.sort(byCodeUnits)) out.push(...(await walkImages(path.join(dir, d), seen)));
  return out;
}
