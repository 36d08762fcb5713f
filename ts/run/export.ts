/**
 * A trained generator for use without LibTorch: ONNX (onnxruntime in Python, Node or a browser), and back
 * in PyTorch (a torch.save'd state_dict). From a
 * run folder, the preset in its config.json says the noise, the classes and the image shape; the model's
 * metadata records them with the pixel range, so a reader can draw the noise and show the images.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Preset } from '../gan/presets';
import { Conv2d, ConvTranspose2d } from '../nn/conv';
import { Linear } from '../nn/layers';
import { Module } from '../nn/module';
import { generatorToOnnx, OnnxExportError } from '../nn/onnx';
import { describeValue } from '../tensor/dtype';
import * as torch from '../tensor/torch';
import { savePytorch } from '../tensor/torch-save';
import { writeFileAtomic } from '../util/fs';
import { packageVersion } from '../util/package';
import { printable } from '../util/printable';
import { enclosingRunFolder, readRunInfo } from './run-dir';
import { loadGenerator } from './sample';

export { OnnxExportError } from '../nn/onnx';

// ---------------------------------------------------------------------------------------------
// Where an export may write: the one rule for exportOnnx, exportPytorch, exportWeb and the CLI

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
function checkFileArg(fn: string, file: unknown): string {
  if (typeof file !== 'string' || file === '') throw new TypeError(`${fn}: file: expected the path to write (a non-empty string), got ${describeValue(file)}`);
  return file;
}

/** `runDir` as an export's source: a non-empty string. */
function checkRunDirArg(fn: string, runDir: unknown): string {
  if (typeof runDir !== 'string' || runDir === '')
    throw new TypeError(`${fn}: runDir: expected the path of a run folder (a non-empty string), got ${describeValue(runDir)}`);
  return runDir;
}

export interface ExportOnnxOptions {
  /** ONNX opset (default 17). */
  opset?: number;
  /**
   * For a Module: the preset it was built from (noise shape, classes, image shape and pixel range);
   * default: noise [inFeatures] of the first Linear, unconditional, the output as G gives it.
   */
  preset?: Preset;
}

export interface ExportedOnnx {
  file: string;
  bytes: number;
  /** What the model's inputs take and its output gives. */
  noise: Preset['step']['noise'];
  classes: number;
  range?: string;
}

/** Model metadata a reader needs, from the preset. */
function presetMetadata(p: Preset): Record<string, string> {
  return {
    'libtorch-gan.preset': p.name,
    'libtorch-gan.noise': JSON.stringify(p.step.noise),
    'libtorch-gan.classes': String(p.step.conditioning?.classes ?? 0),
    'libtorch-gan.range': p.normalize,
    'libtorch-gan.image': JSON.stringify(p.image),
  };
}

/** The noise a bare module reads: its first Linear's inputs (or first ConvTranspose2d's channels, as [c, 1, 1]). */
function inferredNoise(g: Module): number[] {
  const first = [...g.namedParameters()][0];
  if (!first) throw new OnnxExportError('exportOnnx: the generator has no parameters');
  const w = first[1];
  if (w.shape.length === 2) return [w.shape[1]];
  if (w.shape.length === 4) return [w.shape[0], 1, 1];
  throw new OnnxExportError(`exportOnnx: cannot tell the noise shape from ${first[0]} [${w.shape.join(', ')}]; pass { preset }`);
}

/** The first layer that computes (a leaf module), depth first. */
function firstLeaf(m: Module): [string, Module] | undefined {
  for (const [name, sub] of m.namedModules()) if (sub.children().length === 0) return [name, sub];
  return undefined;
}

/**
 * Refuses a preset that does not describe `G` (its ONNX model would pass onnx.checker and fail in
 * onnxruntime): G's first layer must take the preset's noise (+ one-hot classes), and G's output for one
 * input must hold the preset's image (one zero input through G in eval mode without autograd; every
 * module's mode is restored).
 */
function checkPresetFits(G: Module, preset: Preset, noise: number[], classes: number): void {
  const input = [noise[0] + classes, ...noise.slice(1)];
  const image = [preset.image.channels, preset.image.size, preset.image.size];
  const fed = `[batch, ${input.join(', ')}] (noise [${noise.join(', ')}]${classes ? ` and ${classes} one-hot classes` : ''})`;
  const misfit = (why: string) =>
    new OnnxExportError(`exportOnnx: preset '${preset.name}' does not fit this generator: ${why}; pass the preset it was built from`);
  const first = firstLeaf(G);
  if (first) {
    const [name, layer] = first;
    const takes =
      layer instanceof Linear
        ? { shape: [layer.inFeatures], what: 'Linear' }
        : layer instanceof Conv2d || layer instanceof ConvTranspose2d
          ? { shape: [layer.inChannels, 'H', 'W'], what: layer.constructor.name }
          : undefined;
    if (takes && (takes.shape.length !== input.length || takes.shape[0] !== input[0]))
      throw misfit(`the preset feeds it ${fed}, its first layer (${name || 'the module'}: ${takes.what}) takes [batch, ${takes.shape.join(', ')}]`);
  }
  const device = G.parameters()[0]?.device ?? 'cpu';
  const modes = [...G.namedModules()].map(([, m]) => [m, m.training] as const);
  G.eval();
  let out: number[];
  try {
    out = torch.scope(() => torch.noGrad(() => G.forward(torch.zeros([1, ...input], { device })).shape.slice(1)));
  } catch (e) {
    throw misfit(`the preset feeds it ${fed}, which it cannot run on (${(e as Error).message.split('\n')[0]})`);
  } finally {
    for (const [m, training] of modes) m.training = training;
  }
  const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);
  if (out.length === image.length ? out.join() !== image.join() : numel(out) !== numel(image))
    throw misfit(`the preset's images are [${image.join(', ')}], the generator gives [${out.join(', ')}] per image`);
}

/** Writes a run folder's generator (its latest checkpoint's) as a state_dict in torch.save's format. */
export function exportPytorch(runDir: string, file: string): { file: string; bytes: number; tensors: number } {
  checkRunDirArg('exportPytorch', runDir);
  checkExportTargets([{ path: checkFileArg('exportPytorch', file), label: 'exportPytorch: file' }]);
  const G = loadGenerator(runDir, readRunInfo(runDir).config.preset, 'cpu');
  try {
    const sd = G.stateDict();
    savePytorch(sd, file);
    return { file, bytes: fs.statSync(file).size, tensors: Object.keys(sd).length };
  } finally {
    G.dispose();
  }
}

/**
 * Writes `source`'s generator to `file` as ONNX: a run folder (its latest checkpoint's G) or a generator
 * Module. Inputs `z` [batch, ...noise] float32 and, when conditional, `label` [batch] int64; output
 * `images` [batch, C, H, W] in the preset's pixel range.
 */
export function exportOnnx(source: Module | string, file: string, opts: ExportOnnxOptions = {}): ExportedOnnx {
  if (!(source instanceof Module) && (typeof source !== 'string' || source === ''))
    throw new TypeError(`exportOnnx: source: expected a generator Module or the path of a run folder (a non-empty string), got ${describeValue(source)}`);
  checkExportTargets([{ path: checkFileArg('exportOnnx', file), label: 'exportOnnx: file' }]);
  let preset = opts.preset;
  let G: Module;
  if (typeof source === 'string') {
    preset = readRunInfo(source).config.preset;
    G = loadGenerator(source, preset, 'cpu');
  } else {
    G = source;
  }
  try {
    const noise = preset ? (preset.step.noise.shape ?? [preset.step.noise.dim]) : inferredNoise(G);
    const classes = preset?.step.conditioning?.classes ?? 0;
    const image = preset ? [preset.image.channels, preset.image.size, preset.image.size] : undefined;
    if (preset) checkPresetFits(G, preset, noise, classes);
    const bytes = generatorToOnnx(G, {
      noiseShape: noise,
      classes,
      imageShape: image,
      opset: opts.opset,
      metadata: preset ? presetMetadata(preset) : {},
      producerVersion: packageVersion(),
      docString: preset
        ? `${preset.name} generator: z ~ ${preset.step.noise.dist}${classes ? `, label in [0, ${classes})` : ''} -> images in ${preset.normalize}`
        : 'generator',
    });
    writeFileAtomic(file, bytes);
    return {
      file,
      bytes: bytes.length,
      noise: preset?.step.noise ?? { dist: 'normal', dim: noise[0] },
      classes,
      range: preset?.normalize,
    };
  } finally {
    if (typeof source === 'string') G.dispose();
  }
}
