/** Builds facade modules from a ModuleSpec, and flattens a module tree for the native fused step (both through spec.ts's registry). */
import { type Device } from '../tensor/dtype';
import { Embedding, Sequential } from './layers';
import { type Module } from './module';
import { isParametrized, type Parametrized } from './utils/parametrize';
import { SpectralNorm, spectralNorm, type SpectralNormOptions } from './utils/parametrizations';
import { layerClass, layerTypeOf, type ModuleSpec, NATIVE_KINDS, type NativeLayer, nativeLayerOf, SPECTRAL_NORM_KINDS } from './spec';

export { NATIVE_KINDS, type NativeLayer } from './spec';

/**
 * The modules `spec` describes, drawing their initial weights from the default generator in module order.
 * A layer with `spectralNorm` gets nn.utils.parametrizations.spectralNorm right after it is built, inline
 * as SNGAN's `SN(nn.Conv2d(...))`: its u and v are drawn right after the layer's own init, before the
 * next layer's.
 */
export function fromSpec(spec: ModuleSpec, opts: { device?: Device } = {}): Module {
  if (spec.type === 'Sequential') return new Sequential(...spec.children.map((c) => fromSpec(c, opts)));
  const cls = typeof spec.type === 'string' ? layerClass(spec.type) : undefined;
  if (!cls) throw new TypeError(`fromSpec: unknown module type ${JSON.stringify((spec as { type: unknown }).type)}`);
  const m = cls.fromSpec(spec as never, { device: opts.device });
  const sn = (spec as { spectralNorm?: boolean | SpectralNormOptions }).spectralNorm;
  if (!sn) return m;
  if (!SPECTRAL_NORM_KINDS.includes(spec.type))
    throw new TypeError(`fromSpec: a ${spec.type} spec takes no spectralNorm; spectral norm applies to ${SPECTRAL_NORM_KINDS.join(', ')}`);
  // only the options a spec may give (the schema lets a later version's keys through)
  const given = sn === true ? {} : sn;
  const options = Object.fromEntries((['nPowerIterations', 'eps', 'dim'] as const).filter((k) => given[k] !== undefined).map((k) => [k, given[k]]));
  return spectralNorm(m, options);
}

/** The leaf layers of a Sequential tree in execution order. Other container modules are rejected. */
export function toNativeLayers(m: Module, prefix = ''): NativeLayer[] {
  if (isParametrized(m)) {
    const why = parametrizationRefusal(m as Parametrized<Module>);
    if (why)
      throw new TypeError(
        `the fused trainer cannot run module ${prefix || '(root)'} of type ${m.constructor.name}: ${why}; train this model on the facade ` +
          '(imperativeStep, or forward/backward/optimizer.step) or remove them (nn.utils.parametrize.removeParametrizations)',
      );
  }
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

/**
 * Why the fused trainer cannot run parametrized module `m`, or '' when it can: one spectralNorm on the
 * weight of a kind whose native layer runs it (native/sequential.h). Its layer would otherwise read the
 * parametrized tensor once, a temporary, and train that.
 */
function parametrizationRefusal(m: Parametrized<Module>): string {
  const names = m.parametrizations.keys();
  const kind = layerTypeOf(m);
  const list = m.parametrizations.get('weight');
  const snKind = kind !== undefined && SPECTRAL_NORM_KINDS.includes(kind);
  if (snKind && names.length === 1 && list?.length === 1 && list.at(0) instanceof SpectralNorm) return '';
  const by = names.map((n) => {
    const l = m.parametrizations.get(n)!;
    return `its ${n} is parametrized by ${Array.from({ length: l.length }, (_, i) => l.at(i).constructor.name).join(' then ')}`;
  });
  return `${by.join(', ')}; the fused step runs one parametrization only, nn.utils.parametrizations.spectralNorm on the weight of ${SPECTRAL_NORM_KINDS.join(', ')}`;
}
