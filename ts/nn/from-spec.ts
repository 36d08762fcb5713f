/** Builds facade modules from a ModuleSpec, and flattens a module tree for the native fused step (both through spec.ts's registry). */
import { type Device } from '../tensor/dtype';
import { Embedding, Sequential } from './layers';
import { type Module } from './module';
import { layerClass, type ModuleSpec, NATIVE_KINDS, type NativeLayer, nativeLayerOf } from './spec';

export { NATIVE_KINDS, type NativeLayer } from './spec';

export function fromSpec(spec: ModuleSpec, opts: { device?: Device } = {}): Module {
  if (spec.type === 'Sequential') return new Sequential(...spec.children.map((c) => fromSpec(c, opts)));
  const cls = typeof spec.type === 'string' ? layerClass(spec.type) : undefined;
  if (!cls) throw new TypeError(`fromSpec: unknown module type ${JSON.stringify((spec as { type: unknown }).type)}`);
  return cls.fromSpec(spec as never, { device: opts.device });
}

/** The leaf layers of a Sequential tree in execution order. Other container modules are rejected. */
export function toNativeLayers(m: Module, prefix = ''): NativeLayer[] {
  if (m instanceof Sequential) {
    return [...m._modules].flatMap(([n, c]) => toNativeLayers(c, prefix ? `${prefix}.${n}` : n));
  }
  const layer = nativeLayerOf(m, prefix);
  if (layer) return [layer as NativeLayer];
  throw new TypeError(
    `the fused trainer cannot run module ${prefix || '(root)'} of type ${m.constructor.name}; it supports Sequential trees of ${NATIVE_KINDS.join(', ')}` +
      (m instanceof Embedding ? " (conditional GANs take labels through the step spec's conditioning instead)" : ''),
  );
}
