/**
 * A trained generator for use without LibTorch: ONNX (onnxruntime in Python, Node or a browser), and back
 * in PyTorch (a torch.save'd state_dict). From a
 * run folder, the preset in its config.json says the noise, the classes and the image shape; the model's
 * metadata records them with the pixel range, so a reader can draw the noise and show the images.
 */
import * as fs from 'node:fs';
import { type Preset } from '../gan/presets';
import { savePytorch } from '../tensor/torch-save';
import { type Module } from '../nn/module';
import { generatorToOnnx, OnnxExportError } from '../nn/onnx';
import { packageVersion } from '../util/package';
import { writeFileAtomic } from '../util/fs';
import { readRunInfo } from './run-dir';
import { loadGenerator } from './sample';

export { OnnxExportError } from '../nn/onnx';

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

/** Writes a run folder's generator (its latest checkpoint's) as a state_dict in torch.save's format. */
export function exportPytorch(runDir: string, file: string): { file: string; bytes: number; tensors: number } {
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
