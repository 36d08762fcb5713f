/**
 * A trained generator for use without LibTorch: ONNX (onnxruntime in Python, Node or a browser). From a
 * run folder, the preset in its config.json says the noise, the classes and the image shape; the model's
 * metadata records them with the pixel range, so a reader can draw the noise and show the images.
 */
import { type Preset } from '../gan/presets';
import { Conv2d, ConvTranspose2d } from '../nn/conv';
import { Linear } from '../nn/layers';
import { Module } from '../nn/module';
import { generatorToOnnx, OnnxExportError } from './onnx-graph';
import { describeValue } from '../tensor/dtype';
import { readOptions } from '../util/options';
import * as torch from '../tensor/torch';
import { writeFileAtomic } from '../util/fs';
import { packageVersion } from '../util/package';
import { loadGeneratorModule } from '../store/generator';
import { readRunInfo } from '../store/run-dir';
import { checkExportTargets, checkFileArg } from './targets';

export { OnnxExportError } from './onnx-graph';

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

/**
 * Writes `source`'s generator to `file` as ONNX: a run folder (its latest checkpoint's G) or a generator
 * Module. Inputs `z` [batch, ...noise] float32 and, when conditional, `label` [batch] int64; output
 * `images` [batch, C, H, W] in the preset's pixel range.
 */
export function exportOnnx(source: Module | string, file: string, opts: ExportOnnxOptions = {}): ExportedOnnx {
  if (!(source instanceof Module) && (typeof source !== 'string' || source === ''))
    throw new TypeError(`exportOnnx: source: expected a generator Module or the path of a run folder (a non-empty string), got ${describeValue(source)}`);
  checkExportTargets([{ path: checkFileArg('exportOnnx', file), label: 'exportOnnx: file' }]);
  const o = readOptions('exportOnnx', opts, ['opset', 'preset'], { optional: true });
  const opset = o.integerOr('opset', 17, { min: 13, max: 23 });
  let preset = o.get('preset') as Preset | undefined;
  let G: Module;
  if (typeof source === 'string') {
    preset = readRunInfo(source).config.preset;
    G = loadGeneratorModule(source, preset, 'cpu');
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
      opset,
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
