/**
 * Where an export may write: the one rule for exportOnnx, exportPytorch, exportWeb and the CLI. A file of
 * a run folder, a folder, or a path another output of the same export writes is refused before anything
 * is written.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkString } from '../util/options';
import { printable } from '../util/printable';
import { enclosingRunFolder } from '../store/run-dir';

/**
 * An export target refused before anything is written: an existing file of a run folder (or a name a run
 * keeps its files under), a folder, or a path another output of the same export writes. The message names
 * the path, the run folder and what would be lost.
 */
export class ExportTargetError extends Error {
  override readonly name = 'ExportTargetError';
  constructor(
    message: string,
    readonly path: string,
    readonly runDir?: string,
  ) {
    super(message);
  }
}

/** A file an export writes, and how its caller names it in errors ('--onnx', 'exportOnnx: file'). */
export interface ExportTarget {
  path: string;
  label: string;
}

const LATEST = 'of the latest checkpoint, which resume reads';
/** What each file a run writes holds (trainer.ts, checkpoint.ts, run-log.ts, epoch-quality.ts, report.ts). */
const RUN_FILES: Record<string, string> = {
  'config.json': "the run's config, which every command that reads the run needs",
  'trainer.json': 'the checkpoint record (epoch, step and the digest of every checkpoint file), without which the run can neither resume nor be sampled',
  'generator.safetensors': "the generator's weights of the latest checkpoint, which sample, export and resume read",
  'discriminator.safetensors': `the discriminator's weights ${LATEST}`,
  'optimizer_g.safetensors': `the generator's optimizer state ${LATEST}`,
  'optimizer_d.safetensors': `the discriminator's optimizer state ${LATEST}`,
  'rng.safetensors': `the random generators' state and the sample grids' fixed noise ${LATEST}`,
  'losses.csv': 'the loss of every step (the loss plot and a resumed epoch read it)',
  'metrics.csv': 'the quality metrics of every evaluated epoch',
  'real.png': 'the grid of training images the run wrote',
  'loss.png': 'the loss plot',
  'loss.svg': 'the loss plot',
  'quality.png': 'the quality plot',
  'quality.svg': 'the quality plot',
  'report.html': "the run's report",
};

/** What `rel` (a path inside a run folder) holds when the run wrote it, else undefined. */
function runFileContents(rel: string): string | undefined {
  if (Object.hasOwn(RUN_FILES, rel)) return RUN_FILES[rel];
  if (rel.endsWith('.prev') && Object.hasOwn(RUN_FILES, rel.slice(0, -5))) return `the previous ${rel.slice(0, -5)}, kept while a checkpoint is written`;
  if (rel.startsWith('events.out.tfevents.')) return "TensorBoard's log of the run";
  if (rel.split(path.sep)[0] === 'samples') return "the run's sample grids";
  return undefined;
}

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch {
    return null;
  }
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch {
    return null;
  }
}

/**
 * Where a write to the absolute path `p` lands, in the real file system: symbolic links followed (a
 * dangling one to where it points), missing components kept as given. A link loop is refused.
 */
function resolveTarget(p: string, t: ExportTarget, hops = 0): string {
  if (hops > 40) throw new ExportTargetError(`${t.label}: ${printable(t.path)} goes through a loop of symbolic links (at ${printable(p)})`, t.path);
  try {
    return fs.realpathSync(p);
  } catch {
    // some part does not exist yet (or is a dangling link): resolve what exists
  }
  if (lstatOrNull(p)?.isSymbolicLink()) return resolveTarget(path.resolve(path.dirname(p), fs.readlinkSync(p)), t, hops + 1);
  const parent = path.dirname(p);
  return parent === p ? p : path.join(resolveTarget(parent, t, hops), path.basename(p));
}

/**
 * Refuses, before anything is written, export targets that would destroy something: a path that is (or
 * names) a folder or is a device, FIFO or socket; a path another target also writes (compared as resolved real paths, after following
 * symbolic links); and inside any run folder (isRunFolder: the folder itself or one above, where the path
 * is or where its link points) an existing file, or a new one under a name the run writes its own files
 * under. New files elsewhere in a run folder are fine; with `replaceOthers` (a sample grid rewritten) so
 * are existing files the run did not write. Throws an ExportTargetError naming the path, the run folder
 * and what would be lost.
 */
export function checkExportTargets(targets: readonly ExportTarget[], opts: { replaceOthers?: boolean } = {}): void {
  const seen = new Map<string, ExportTarget>();
  for (const t of targets) {
    const shown = printable(t.path);
    if (/[\\/]$/.test(t.path)) throw new ExportTargetError(`${t.label}: ${shown} names a folder; give a file name`, t.path);
    const abs = path.resolve(t.path);
    const real = resolveTarget(abs, t);
    const here = lstatOrNull(abs);
    const there = statOrNull(real);
    if (there?.isDirectory())
      throw new ExportTargetError(`${t.label}: ${shown} is a folder; give a file name (e.g. ${printable(path.join(t.path, 'generator.onnx'))})`, t.path);
    // the atomic write renames over its target: a device or FIFO (/dev/null) would be replaced, not written to
    if (there && !there.isFile())
      throw new ExportTargetError(`${t.label}: ${shown} is not a regular file (a device, FIFO or socket); give a file name`, t.path);
    const places = [...new Set([abs, real])];
    for (const p of places) {
      const other = seen.get(p);
      if (other)
        throw new ExportTargetError(
          `${t.label} and ${other.label} both write ${printable(p)}: the second would replace the first; give each its own file`,
          t.path,
        );
    }
    for (const p of places) seen.set(p, t);
    for (const p of places) {
      const run = enclosingRunFolder(p);
      if (!run) continue;
      const rel = path.relative(run, p);
      const runs = runFileContents(rel);
      const exists = here !== null || there !== null;
      if (runs === undefined && (!exists || opts.replaceOthers)) continue;
      const via = p === abs ? '' : ` (through a symbolic link, ${printable(p)})`;
      const where = `${printable(rel)}${via} of the run folder ${printable(run)}`;
      const why = exists
        ? `would overwrite ${where}; that would lose ${runs ?? 'its current contents'}`
        : `is the name of ${where}, where the run keeps ${runs}: the run would overwrite the export or take it for its own`;
      throw new ExportTargetError(`${t.label}: ${shown} ${why}. Write it outside the run folder, or to a new file name there`, t.path, run);
    }
  }
}

/** `file` as an export's target path: a non-empty string. */
export function checkFileArg(fn: string, file: unknown): string {
  return checkString(file, `${fn}: file`, 'the path to write (a non-empty string)');
}

/** `runDir` as an export's source: a non-empty string. */
export function checkRunDirArg(fn: string, runDir: unknown): string {
  return checkString(runDir, `${fn}: runDir`, 'the path of a run folder (a non-empty string)');
}
