/** Builds facade modules from a ModuleSpec, and flattens a module tree for the native fused step (both through spec.ts's registry). */
import { type Device } from '../tensor/dtype';
import { Embedding, Sequential } from './layers';
import { type Module } from './module';
import { isParametrized, type Parametrized } from './utils/parametrize';
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
  // its layers would read the parametrized weight once, a temporary, and train that
  if (isParametrized(m))
    throw new TypeError(
      `the fused trainer cannot run module ${prefix || '(root)'} of type ${m.constructor.name}: its ${dictNames(m)} parametrized ` +
        '(nn.utils.parametrizations.spectralNorm or nn.utils.parametrize.registerParametrization); the fused step does not take parametrizations yet: train this model on the facade ' +
        '(imperativeStep, or forward/backward/optimizer.step) or remove them (nn.utils.parametrize.removeParametrizations)',
    );
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

/** "weight is", "weight, bias are": the tensors of `m` that parametrizations compute. */
function dictNames(m: Module): string {
  const names = (m as Parametrized<Module>).parametrizations.keys();
  return `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'}`;
}
