/**
 * Plain-data description of a module tree (ModuleSpec). Presets are written in it, `nn.fromSpec` builds
 * facade modules from it, config.json stores it (checked by ModuleSpecSchema), and the fused native
 * trainer receives the built modules' layers (NativeLayer). Field names follow torch.nn's constructor
 * arguments (camelCase).
 *
 * The registry of layer kinds: every class exported by layers.ts, batchnorm.ts or conv.ts that declares its own static
 * `spec` (a zod schema of its constructor arguments, `type` its class name) and `fromSpec` is a kind a
 * spec can name; one that also has `nativeFields()` runs in the fused trainer. Everything else here
 * (ModuleSpec, ModuleSpecSchema, MODULE_TYPES, NATIVE_KINDS, NativeLayer, fromSpec, toNativeLayers) is
 * derived from those classes. 'Sequential' is the one container and is handled here.
 *
 * A new layer kind touches these four places (native/sequential.h keeps the C++ side of this list):
 *   native/sequential.h/.cc   a Layer::Kind, its fields, forward(), parameters(), tensors(), check()
 *   native/gan_spec_js.cc     its name in kLayerKinds and the fields layersFromJs reads: exactly what
 *                             nativeFields() returns
 *   ts/nn/layers.ts (batchnorm.ts, conv.ts)  the module class: PyTorch's name, init and state-dict names, its static
 *                             `spec` and `fromSpec`, `nativeFields()` (and `parameterShapes` when it has parameters: verbose 3 counts them)
 *   test/parity/reference.py  build() from the spec; regenerate test/parity/fixtures (regenerate.sh); its
 *                             facade-against-PyTorch case in test/nn/nn.test.ts
 * A layer kind in a new file of ts/nn is collected by adding that file to `exported` below; ts/nn/index.ts
 * exports every class of those files.
 */
import { z } from 'zod';
import { type NativeLayer as NativeLayerBase } from '../native/addon';
import { expected, type SpecOf } from '../util/schema';
import * as batchnorm from './batchnorm';
import * as conv from './conv';
import * as layers from './layers';
import { type FactoryOptions } from './layers';
import { type Module } from './module';

/** What a layer class declares to be a layer kind. */
interface SpecClass {
  readonly spec: z.ZodType & { readonly shape: { readonly type: z.ZodLiteral<string> } };
  fromSpec(spec: never, opts: FactoryOptions): Module;
}
interface NativeClass extends SpecClass {
  readonly prototype: Module & { nativeFields(name: string): object };
}

const exported = { ...layers, ...batchnorm, ...conv };
/** The layer classes (every layer kind but Sequential). */
export type LayerClass = Extract<(typeof exported)[keyof typeof exported], SpecClass>;
type SpecOfClass<C> = C extends { readonly spec: infer S extends z.ZodType } ? SpecOf<S> : never;
type TypeOf<C> = C extends { readonly spec: { readonly shape: { readonly type: z.ZodLiteral<infer T> } } } ? T : never;
type NativeLayerOf<C> = C extends NativeClass ? { kind: TypeOf<C>; name: string } & ReturnType<C['prototype']['nativeFields']> : never;

/** A module tree's description: a layer's constructor arguments, or a Sequential of module specs. */
export type ModuleSpec = SpecOfClass<LayerClass> | { type: 'Sequential'; children: ModuleSpec[] };

/**
 * One leaf layer for the native executor (native/sequential.h): `kind` its class name, `name` its
 * state-dict prefix (errors name it by it), then exactly the fields its `nativeFields()` gives.
 */
export type NativeLayer = NativeLayerOf<Extract<LayerClass, NativeClass>>;

const isLayerClass = (v: unknown): v is LayerClass =>
  typeof v === 'function' && Object.hasOwn(v, 'spec') && typeof (v as Partial<SpecClass>).fromSpec === 'function';
const typeOf = (c: LayerClass): string => c.spec.shape.type.value;
/** By name, so that the lists in error messages do not depend on the order of declarations. */
const LAYER_CLASSES: readonly LayerClass[] = Object.values(exported)
  .filter(isLayerClass)
  .sort((a, b) => (typeOf(a) < typeOf(b) ? -1 : 1));
const BY_TYPE = new Map<string, LayerClass>(LAYER_CLASSES.map((c) => [typeOf(c), c]));
const TYPE_OF = new Map<unknown, string>(LAYER_CLASSES.map((c) => [c, typeOf(c)]));

/** The module types a spec may name. */
export const MODULE_TYPES: readonly ModuleSpec['type'][] = [...LAYER_CLASSES.map(typeOf), 'Sequential'] as ModuleSpec['type'][];
/** The module types toNativeLayers accepts (inside Sequentials). */
export const NATIVE_KINDS: readonly NativeLayer['kind'][] = LAYER_CLASSES.filter(
  (c) => typeof (c.prototype as Partial<NativeClass['prototype']>).nativeFields === 'function',
).map(typeOf) as NativeLayer['kind'][];

/**
 * The layer kinds whose spec takes `spectralNorm` (their class's schema declares it): fromSpec applies it,
 * their nativeFields() give its state and the fused trainer runs it (native/sequential.h).
 */
export const SPECTRAL_NORM_KINDS: readonly string[] = LAYER_CLASSES.filter((c) => 'spectralNorm' in c.spec.shape).map(typeOf);

// zod types a union's error callback for union issues only, but calls it for a non-object too
const codeOf = (iss: unknown) => (iss as { code?: string }).code;

/** A module spec as config.json stores it; each layer's fields as its class's `spec` checks them. */
export const ModuleSpecSchema: z.ZodType<ModuleSpec> = z.discriminatedUnion(
  'type',
  [
    ...LAYER_CLASSES.map((c) => c.spec),
    z.looseObject(
      {
        type: z.literal('Sequential'),
        get children() {
          return z.array(ModuleSpecSchema, expected('an array of module specs'));
        },
      },
      expected('a Sequential spec'),
    ),
  ] as unknown as [z.ZodObject, ...z.ZodObject[]],
  // a non-object, or an object whose `type` is no module type (the issue is then at `type`)
  { error: (iss) => (codeOf(iss) === 'invalid_type' ? 'a module spec { type, ... }' : `one of ${MODULE_TYPES.join(', ')}`) },
) as unknown as z.ZodType<ModuleSpec>;

/** The layer class a spec's `type` names, or undefined ('Sequential' and unknown names). */
export function layerClass(type: string): LayerClass | undefined {
  return BY_TYPE.get(type);
}

/** The layer kind of module `m`: its class's (or, for a subclass of a layer, the nearest layer class's) spec type. */
export function layerTypeOf(m: Module): string | undefined {
  for (let c: unknown = m.constructor; c; c = Object.getPrototypeOf(c)) {
    const t = TYPE_OF.get(c);
    if (t) return t;
  }
  return undefined;
}

/**
 * The learnable parameters a layer spec's module holds, by name (as named_parameters()) with their
 * shapes: its class's static `parameterShapes`, none for a class without. Under spectral norm the weight
 * is `parametrizations.weight.original`, after the module's own parameters (a submodule's), as in PyTorch.
 */
export function parameterShapes(spec: Exclude<ModuleSpec, { type: 'Sequential' }>): Record<string, number[]> {
  const cls = layerClass(spec.type) as { parameterShapes?: (s: never) => Record<string, number[]> } | undefined;
  const shapes = cls?.parameterShapes?.(spec as never) ?? {};
  if (!(spec as { spectralNorm?: unknown }).spectralNorm) return shapes;
  const { weight, ...own } = shapes;
  return { ...own, 'parametrizations.weight.original': weight };
}

/** @internal The native layer of `m` (named `name`), or undefined when the fused trainer cannot run its kind. */
export function nativeLayerOf(m: Module, name: string): NativeLayerBase | undefined {
  const kind = layerTypeOf(m);
  const fields = (m as Module & Partial<NativeClass['prototype']>).nativeFields;
  return kind && typeof fields === 'function' ? { kind, name, ...fields.call(m, name) } : undefined;
}
