/**
 * A generator (a Sequential tree of the layers the presets use) as an ONNX model, written with onnx-proto
 * (ONNX's own schema compiled for protobufjs). Inference semantics: BatchNorm with its running statistics,
 * Dropout as the identity. Inputs `z` [batch, ...noise shape] (float32) and, for a conditional generator,
 * `label` [batch] (int64), whose one-hot vector is concatenated after the noise in dimension 1 (spread
 * over the noise's trailing sizes), as GanStep's conditioning does. Output `images`.
 */
import { onnx } from 'onnx-proto';
import { type Tensor } from '../tensor/tensor';
import { Conv2d, ConvTranspose2d } from '../nn/conv';
import { BatchNorm1d, BatchNorm2d } from '../nn/batchnorm';
import { Dropout, Embedding, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, Unflatten } from '../nn/layers';
import { type Module } from '../nn/module';

export class OnnxExportError extends Error {
  override name = 'OnnxExportError';
}

export interface OnnxGraphOptions {
  /** One sample's noise shape: [dim] for an MLP, [dim, 1, 1] for a convolutional generator. */
  noiseShape: number[];
  /** Classes of a conditional generator (0: unconditional). */
  classes?: number;
  /** Reshape a flat output to [batch, ...imageShape] (e.g. [1, 28, 28]). */
  imageShape?: number[];
  /** The opset (default 17; 13 or later). */
  opset?: number;
  /** Stored as the model's metadata_props (what a reader needs: the pixel range, the noise). */
  metadata?: Record<string, string>;
  docString?: string;
  producerVersion?: string;
}

const A = onnx.AttributeProto.AttributeType;
type Attr = number | number[] | string;

function attribute(name: string, v: Attr): onnx.IAttributeProto {
  if (typeof v === 'string') return { name, type: A.STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v };
  return Number.isInteger(v) ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
}

class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private count = 0;

  node(op: string, inputs: string[], name: string, attrs: Record<string, Attr> = {}): string {
    const out = `${name}:${op}:${this.count++}`;
    this.nodes.push({ opType: op, input: inputs, output: [out], name: out, attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)) });
    return out;
  }

  floats(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: Buffer.from(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }

  ints(name: string, data: number[]): string {
    const raw = Buffer.from(BigInt64Array.from(data, BigInt).buffer);
    this.initializers.push({ name, dims: [data.length], dataType: onnx.TensorProto.DataType.INT64, rawData: raw });
    return name;
  }

  /** A parameter or buffer of the model, by its state_dict name. */
  tensor(name: string, t: Tensor): string {
    if (t.dtype !== 'float32') throw new OnnxExportError(`exportOnnx: ${name} is ${t.dtype}; the export writes float32 models`);
    const cpu = t.device === 'cpu' ? t : t.to('cpu');
    try {
      return this.floats(name, t.shape, (cpu.toTypedArray() as Float32Array).slice());
    } finally {
      if (cpu !== t) cpu.dispose();
    }
  }
}

const pair = (v: number | [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : v);

/** Emits module `m` (named `name`, PyTorch's state_dict prefix) on input `x`; returns its output's name. */
function emit(g: GraphBuilder, m: Module, name: string, x: string): string {
  const at = (p: string) => (name ? `${name}.${p}` : p);
  const where = name || '(root)';
  if (m instanceof Sequential) {
    let out = x;
    for (const [n, c] of m._modules) out = emit(g, c, at(n), out);
    return out;
  }
  if (m instanceof Linear) {
    const inputs = [x, g.tensor(at('weight'), m.weight)];
    if (m.bias) inputs.push(g.tensor(at('bias'), m.bias));
    return g.node('Gemm', inputs, where, { transB: 1 });
  }
  if (m instanceof ReLU) return g.node('Relu', [x], where);
  if (m instanceof LeakyReLU) return g.node('LeakyRelu', [x], where, { alpha: m.negativeSlope === 0 ? 0 : m.negativeSlope + 0 });
  if (m instanceof Tanh) return g.node('Tanh', [x], where);
  if (m instanceof Sigmoid) return g.node('Sigmoid', [x], where);
  if (m instanceof Dropout) return x; // the identity at inference
  if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) {
    const mean = m._buffers.get('running_mean');
    const variance = m._buffers.get('running_var');
    if (!mean || !variance)
      throw new OnnxExportError(
        `exportOnnx: ${where} (${m.constructor.name}) has no running statistics (trackRunningStats: false): it normalizes with each batch's own, which inference cannot`,
      );
    const n = m.numFeatures;
    const weight = m._parameters.get('weight');
    const bias = m._parameters.get('bias');
    const scale = weight ? g.tensor(at('weight'), weight) : g.floats(at('weight'), [n], new Float32Array(n).fill(1));
    const shift = bias ? g.tensor(at('bias'), bias) : g.floats(at('bias'), [n], new Float32Array(n));
    return g.node('BatchNormalization', [x, scale, shift, g.tensor(at('running_mean'), mean), g.tensor(at('running_var'), variance)], where, {
      epsilon: m.eps,
    });
  }
  if (m instanceof Conv2d || m instanceof ConvTranspose2d) {
    const [kh, kw] = m.kernelSize;
    let pads: number[];
    if (m.padding === 'valid') pads = [0, 0, 0, 0];
    else if (m.padding === 'same') {
      // PyTorch's 'same': the odd one of an even total goes after (bottom, right)
      const [th, tw] = [m.dilation[0] * (kh - 1), m.dilation[1] * (kw - 1)];
      pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
    } else {
      const [ph, pw] = pair(m.padding);
      pads = [ph, pw, ph, pw];
    }
    const inputs = [x, g.tensor(at('weight'), m.weight)];
    if (m.bias) inputs.push(g.tensor(at('bias'), m.bias));
    const attrs: Record<string, Attr> = { kernel_shape: [kh, kw], strides: m.stride, pads, dilations: m.dilation, group: m.groups };
    if (m instanceof ConvTranspose2d) return g.node('ConvTranspose', inputs, where, { ...attrs, output_padding: m.outputPadding });
    return g.node('Conv', inputs, where, attrs);
  }
  if (m instanceof Flatten) {
    if (m.startDim !== 1 || m.endDim !== -1)
      throw new OnnxExportError(`exportOnnx: ${where}: Flatten(${m.startDim}, ${m.endDim}) cannot be exported; only Flatten(1, -1)`);
    return g.node('Flatten', [x], where, { axis: 1 });
  }
  if (m instanceof Unflatten) {
    if (m.dim !== 1 && m.dim !== -1)
      throw new OnnxExportError(`exportOnnx: ${where}: Unflatten of dimension ${m.dim} cannot be exported; only of dimension 1 of [batch, features]`);
    return g.node('Reshape', [x, g.ints(at('shape'), [0, ...m.unflattenedSize])], where);
  }
  const hint = m instanceof Embedding ? " (conditional generators take their labels through the step spec's conditioning, which the export writes)" : '';
  throw new OnnxExportError(`exportOnnx: ${where} is a ${m.constructor.name}, which the export does not write${hint}`);
}

const dims = (d: (number | string)[]): onnx.ITensorShapeProto => ({ dim: d.map((v) => (typeof v === 'string' ? { dimParam: v } : { dimValue: v })) });
const valueInfo = (name: string, elemType: number, shape: (number | string)[]): onnx.IValueInfoProto => ({
  name,
  type: { tensorType: { elemType, shape: dims(shape) } },
});

/** The ONNX model of `generator` (serialized ModelProto bytes). */
export function generatorToOnnx(generator: Module, opts: OnnxGraphOptions): Uint8Array {
  const opset = opts.opset ?? 17;
  if (!Number.isInteger(opset) || opset < 13 || opset > 23) throw new OnnxExportError(`exportOnnx: opset must be an integer in [13, 23], got ${opset}`);
  const classes = opts.classes ?? 0;
  const g = new GraphBuilder();
  const inputs = [valueInfo('z', onnx.TensorProto.DataType.FLOAT, ['batch', ...opts.noiseShape])];
  let x = 'z';
  if (classes > 0) {
    inputs.push(valueInfo('label', onnx.TensorProto.DataType.INT64, ['batch']));
    let oneHot = g.node('OneHot', ['label', g.ints('one_hot.depth', [classes]), g.floats('one_hot.values', [2], Float32Array.of(0, 1))], 'label', { axis: -1 });
    const trailing = opts.noiseShape.slice(1);
    if (trailing.length) {
      // [batch, classes] -> [batch, classes, 1, ...] -> spread over the noise's trailing sizes
      oneHot = g.node('Reshape', [oneHot, g.ints('one_hot.shape', [0, classes, ...trailing.map(() => 1)])], 'label');
      oneHot = g.node('Expand', [oneHot, g.ints('one_hot.expand', [1, classes, ...trailing])], 'label');
    }
    x = g.node('Concat', ['z', oneHot], 'input', { axis: 1 });
  }
  let out = emit(g, generator, '', x);
  if (opts.imageShape) out = g.node('Reshape', [out, g.ints('images.shape', [-1, ...opts.imageShape])], 'images');
  g.nodes.push({ opType: 'Identity', input: [out], output: ['images'], name: 'images' });
  const outShape = opts.imageShape ? ['batch', ...opts.imageShape] : ['batch'];
  const model: onnx.IModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    producerName: 'libtorch-gan',
    producerVersion: opts.producerVersion ?? '',
    docString: opts.docString ?? '',
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: 'generator',
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: [
        opts.imageShape
          ? valueInfo('images', onnx.TensorProto.DataType.FLOAT, outShape)
          : { name: 'images', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } },
      ],
    },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
