/** Builds facade modules from a ModuleSpec, and flattens a module tree for the native fused step. */
import { type Device } from '../tensor/dtype';
import { type NativeLayer, type NativeTensor } from '../native/addon';
import { Conv2d, ConvTranspose2d } from './conv';
import { BatchNorm1d, BatchNorm2d, Dropout, Embedding, Flatten, LeakyReLU, Linear, ReLU, Sequential, Sigmoid, Tanh, Unflatten } from './layers';
import { type Module } from './module';
import { type ModuleSpec } from './spec';

export function fromSpec(spec: ModuleSpec, opts: { device?: Device } = {}): Module {
  const o = { device: opts.device };
  switch (spec.type) {
    case 'Linear':
      return new Linear(spec.inFeatures, spec.outFeatures, { bias: spec.bias, ...o });
    case 'ReLU':
      return new ReLU();
    case 'LeakyReLU':
      return new LeakyReLU(spec.negativeSlope);
    case 'Tanh':
      return new Tanh();
    case 'Sigmoid':
      return new Sigmoid();
    case 'Dropout':
      return new Dropout(spec.p);
    case 'BatchNorm1d':
    case 'BatchNorm2d': {
      const bn = { eps: spec.eps, momentum: spec.momentum, affine: spec.affine, trackRunningStats: spec.trackRunningStats, ...o };
      return spec.type === 'BatchNorm1d' ? new BatchNorm1d(spec.numFeatures, bn) : new BatchNorm2d(spec.numFeatures, bn);
    }
    case 'Conv2d': {
      const { inChannels, outChannels, kernelSize, stride, padding, dilation, groups, bias } = spec;
      return new Conv2d(inChannels, outChannels, kernelSize, { stride, padding, dilation, groups, bias, ...o });
    }
    case 'ConvTranspose2d': {
      const { inChannels, outChannels, kernelSize, stride, padding, outputPadding, dilation, groups, bias } = spec;
      return new ConvTranspose2d(inChannels, outChannels, kernelSize, { stride, padding, outputPadding, dilation, groups, bias, ...o });
    }
    case 'Embedding':
      return new Embedding(spec.numEmbeddings, spec.embeddingDim, { paddingIdx: spec.paddingIdx, ...o });
    case 'Flatten':
      return new Flatten(spec.startDim, spec.endDim);
    case 'Unflatten':
      return new Unflatten(spec.dim, spec.unflattenedSize);
    case 'Sequential':
      return new Sequential(...spec.children.map((c) => fromSpec(c, opts)));
    default:
      throw new TypeError(`fromSpec: unknown module type ${JSON.stringify((spec as { type: unknown }).type)}`);
  }
}

/** One leaf layer for the native executor (its type lives with the native surface it feeds). */
export type { NativeLayer } from '../native/addon';

/** The leaf layers of a Sequential tree in execution order. Other container modules are rejected. */
export function toNativeLayers(m: Module, prefix = ''): NativeLayer[] {
  if (m instanceof Sequential) {
    return [...m._modules].flatMap(([n, c]) => toNativeLayers(c, prefix ? `${prefix}.${n}` : n));
  }
  const nat = (t: unknown) => (t ? (t as { _native: NativeTensor })._native : null);
  const name = prefix;
  if (m instanceof Linear) return [{ kind: 'Linear', name, weight: m.weight._native, bias: nat(m.bias) }];
  if (m instanceof LeakyReLU) return [{ kind: 'LeakyReLU', name, negativeSlope: m.negativeSlope }];
  if (m instanceof Dropout) return [{ kind: 'Dropout', name, p: m.p }];
  if (m instanceof Conv2d || m instanceof ConvTranspose2d) {
    const transposed = m instanceof ConvTranspose2d;
    return [
      {
        kind: transposed ? 'ConvTranspose2d' : 'Conv2d',
        name,
        weight: m.weight._native,
        bias: nat(m.bias),
        stride: m.stride,
        padding: nativePadding(m, prefix),
        dilation: m.dilation,
        ...(transposed ? { outputPadding: m.outputPadding } : {}),
        groups: m.groups,
      },
    ];
  }
  if (m instanceof BatchNorm1d || m instanceof BatchNorm2d) {
    return [
      {
        kind: m instanceof BatchNorm1d ? 'BatchNorm1d' : 'BatchNorm2d',
        name,
        weight: nat(m._parameters.get('weight')),
        bias: nat(m._parameters.get('bias')),
        runningMean: nat(m._buffers.get('running_mean')),
        runningVar: nat(m._buffers.get('running_var')),
        numBatchesTracked: nat(m._buffers.get('num_batches_tracked')),
        eps: m.eps,
        momentum: m.momentum,
      },
    ];
  }
  if (m instanceof Flatten) return [{ kind: 'Flatten', name, startDim: m.startDim, endDim: m.endDim }];
  if (m instanceof Unflatten) return [{ kind: 'Unflatten', name, dim: m.dim, sizes: m.unflattenedSize }];
  if (m instanceof ReLU) return [{ kind: 'ReLU', name }];
  if (m instanceof Tanh) return [{ kind: 'Tanh', name }];
  if (m instanceof Sigmoid) return [{ kind: 'Sigmoid', name }];
  throw new TypeError(
    `the fused trainer cannot run module ${prefix || '(root)'} of type ${m.constructor.name}; it supports Sequential trees of ${NATIVE_KINDS.join(', ')}` +
      (m instanceof Embedding ? " (conditional GANs take labels through the step spec's conditioning instead)" : ''),
  );
}

/** The module types toNativeLayers accepts (inside Sequentials). */
export const NATIVE_KINDS = [
  'Linear',
  'Conv2d',
  'ConvTranspose2d',
  'ReLU',
  'LeakyReLU',
  'Tanh',
  'Sigmoid',
  'Dropout',
  'BatchNorm1d',
  'BatchNorm2d',
  'Flatten',
  'Unflatten',
] as const;

/** Symmetric padding per side: 'valid' is 0, 'same' is dilation * (k - 1) / 2 (odd kernels; stride 1 is checked by Conv2d). */
function nativePadding(m: Conv2d | ConvTranspose2d, prefix: string): [number, number] {
  if (typeof m.padding !== 'string') return m.padding;
  if (m.padding === 'valid') return [0, 0];
  const total = m.kernelSize.map((k, i) => m.dilation[i] * (k - 1));
  if (total.some((t) => t % 2 !== 0))
    throw new TypeError(
      `the fused trainer runs padding='same' only where it is symmetric; ${prefix || '(root)'} has kernel ${m.kernelSize.join('x')} (give the padding as numbers)`,
    );
  return [total[0] / 2, total[1] / 2];
}
