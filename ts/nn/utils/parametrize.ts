/**
 * Parametrizations, as torch.nn.utils.parametrize: a module's parameter or buffer `name` becomes the output
 * of a list of modules applied to an `original` tensor, computed each time `module[name]` is read. As in
 * PyTorch, the module's class is swapped for a subclass `Parametrized<Class>` holding the property, the
 * tensor moves to `module.parametrizations[name].original`, and state-dict keys are
 * `parametrizations.<name>.original` and then each parametrization's own (`parametrizations.<name>.0._u`).
 */
import { type NativeTensor } from '../../native/addon';
import { Tensor } from '../../tensor/tensor';
import * as torch from '../../tensor/torch';
import { describeValue, readOptions } from '../../util/options';
import { suggest } from '../../util/suggest';
import { Module } from '../module';
import { type SpectralNorm } from './parametrizations';

/** The `parametrizations` container of a parametrized module: one ParametrizationList per tensor name (PyTorch's ModuleDict). */
export class ModuleDict extends Module {
  get(name: string): ParametrizationList | undefined {
    return this._modules.get(name) as ParametrizationList | undefined;
  }
  keys(): string[] {
    return [...this._modules.keys()];
  }
  forward(): Tensor {
    throw new Error('ModuleDict is a container of modules and has no forward');
  }
}

/** The parametrizations of one tensor, applied in order to `original`; forward() is the parametrized tensor. */
export class ParametrizationList extends Module {
  /** Whether `original` is a parameter (else a buffer), as the tensor it replaced was. */
  readonly originalIsParameter: boolean;

  /**
   * Takes over `original` (the module's tensor), right_inverse'd by `first` when it has one; then, unless
   * `unsafe`, computes the parametrized tensor once (a training-mode spectral norm's power iteration runs
   * then, as in PyTorch) and checks that it keeps the dtype and shape.
   */
  constructor(first: Module, original: Tensor, isParameter: boolean, unsafe: boolean) {
    super();
    this.originalIsParameter = isParameter;
    this.registerModule('0', first);
    const { dtype, shape } = original;
    const inv = rightInverseOf(first);
    if (inv) {
      const value = torch.noGrad(() => inv(original));
      if (value !== original) {
        checkSame('right_inverse', original, value);
        original._setData(value); // PyTorch's original.set_(new): optimizers holding `original` keep it
      }
    }
    if (isParameter) this.registerParameter('original', original);
    else this.registerBuffer('original', original);
    if (!unsafe) torch.scope(() => checkSame('the parametrization', { dtype, shape }, this.forward()));
  }
  get original(): Tensor {
    return (this.originalIsParameter ? this._parameters : this._buffers).get('original')!;
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): Module {
    const m = this._modules.get(String(i < 0 ? this._modules.size + i : i));
    if (!m) throw new RangeError(`ParametrizationList index ${i} out of range (length ${this._modules.size})`);
    return m;
  }
  append(m: Module): void {
    this.registerModule(String(this._modules.size), m);
  }
  /** The parametrized tensor: each parametrization applied in order to `original`. */
  forward(): Tensor {
    return torch.scope(() => {
      let x = this.original;
      for (const m of this._modules.values()) x = m.forward(x);
      return x;
    });
  }
  /** Sets `original` so that forward() gives `value`: each parametrization's rightInverse, last to first. */
  rightInverse(value: Tensor): void {
    torch.noGrad(() => {
      let v = value;
      for (const m of [...this._modules.values()].reverse()) {
        const inv = rightInverseOf(m);
        if (!inv) throw new Error(`parametrization ${m.constructor.name} does not implement rightInverse`);
        v = inv(v);
      }
      checkSame('rightInverse', this.original, v, false);
      this.original._setData(v);
    });
  }
}

/** A module that parametrizations can undo: `rightInverse(value)` gives an `original` whose forward is `value`. */
interface Invertible {
  rightInverse(value: Tensor): Tensor;
}
function rightInverseOf(m: Module): ((v: Tensor) => Tensor) | undefined {
  const f = (m as Module & Partial<Invertible>).rightInverse;
  return typeof f === 'function' ? (v) => f.call(m, v) : undefined;
}

/** Registering must keep the tensor's dtype (and, unless only the dtype is checked, its shape). */
function checkSame(what: string, before: { dtype: string; shape: number[] }, after: unknown, shapeToo = true): void {
  if (!(after instanceof Tensor)) throw new TypeError(`${what} must return a Tensor, got ${describeValue(after)}`);
  if (after.dtype !== before.dtype) throw new TypeError(`${what} may not change the dtype of the tensor: ${before.dtype} became ${after.dtype}`);
  if (shapeToo && after.shape.join() !== before.shape.join())
    throw new RangeError(`${what} may not change the shape of the tensor: [${before.shape.join(', ')}] became [${after.shape.join(', ')}]`);
}

/** A module after registerParametrization: `parametrizations.<name>` and, read as `module[name]`, the parametrized tensor. */
export type Parametrized<M extends Module> = M & { readonly parametrizations: ModuleDict & { readonly [name: string]: ParametrizationList } };

function dictOf(module: Module): ModuleDict | undefined {
  const d = module._modules.get('parametrizations');
  return d instanceof ModuleDict ? d : undefined;
}

/** Whether `module` has parametrizations (on `tensorName`, when given), as torch.nn.utils.parametrize.is_parametrized. */
export function isParametrized(module: Module, tensorName?: string): boolean {
  const d = module instanceof Module ? dictOf(module) : undefined;
  if (!d) return false;
  return tensorName === undefined ? d.keys().length > 0 : d.get(tensorName) !== undefined;
}

/** The class of `module` before parametrizations swapped it, as type_before_parametrizations. */
export function typeBeforeParametrizations(module: Module): abstract new (...args: never[]) => Module {
  const c = module.constructor as abstract new (...args: never[]) => Module;
  return isParametrized(module) ? Object.getPrototypeOf(c) : c;
}

/** The parameter or buffer `name` of `module` (and which), or undefined. */
function ownTensor(module: Module, name: string): { t: Tensor; isParameter: boolean } | undefined {
  const p = module._parameters.get(name);
  if (p) return { t: p, isParameter: true };
  const b = module._buffers.get(name);
  return b ? { t: b, isParameter: false } : undefined;
}

function noTensor(fn: string, module: Module, name: unknown): TypeError {
  const names = [...module._parameters, ...module._buffers].filter(([, t]) => t).map(([n]) => n);
  const hint = typeof name === 'string' ? suggest(name, names) : undefined;
  const has = hint ? `did you mean '${hint}'?` : `it has ${names.length ? names.join(', ') : 'none'}`;
  return new TypeError(`${fn}: module ${module.constructor.name} has no parameter or buffer named ${describeValue(name)} (${has})`);
}

/**
 * @internal The tensor `module[name]` that a new parametrization would take: the parameter or buffer, or
 * the parametrized tensor (computed) when `name` is parametrized already; else an error naming `name`.
 */
export function tensorToParametrize(fn: string, module: Module, name: string): Tensor {
  if (isParametrized(module, name)) return (module as unknown as Record<string, Tensor>)[name];
  const own = ownTensor(module, name);
  if (!own) throw noTensor(fn, module, name);
  return own.t;
}

/**
 * Makes `module[tensorName]` the output of `parametrization` applied to the tensor, as
 * torch.nn.utils.parametrize.register_parametrization; a tensor already parametrized gets one more
 * parametrization at the end of its list. `unsafe` skips the dtype and shape checks.
 */
export function registerParametrization<M extends Module>(
  module: M,
  tensorName: string,
  parametrization: Module,
  opts: { unsafe?: boolean } = {},
): Parametrized<M> {
  const fn = 'registerParametrization';
  if (!(module instanceof Module)) throw new TypeError(`${fn}: expected an nn.Module, got ${describeValue(module)}`);
  if (typeof tensorName !== 'string') throw new TypeError(`${fn}: expected a tensor name (a string), got ${describeValue(tensorName)}`);
  if (!(parametrization instanceof Module))
    throw new TypeError(`${fn}: expected the parametrization to be an nn.Module, got ${describeValue(parametrization)}`);
  const unsafe = readOptions(fn, opts, ['unsafe'], { optional: true }).booleanOr('unsafe', false);
  parametrization.train(module.training);
  const dict = dictOf(module);
  const list = dict?.get(tensorName);
  if (list) {
    if (!unsafe)
      torch.scope(() => {
        const y = (module as unknown as Record<string, Tensor>)[tensorName];
        const x = parametrization.forward(y);
        checkSame('the parametrization', y, x);
        const inv = rightInverseOf(parametrization);
        if (inv) checkSame("the parametrization's rightInverse", y, inv(x));
      });
    list.append(parametrization);
    return module as Parametrized<M>;
  }
  const own = ownTensor(module, tensorName);
  if (!own) throw noTensor(fn, module, tensorName);
  // the property that reads the parametrized tensor must not be shadowed by a field of the instance
  if (Object.hasOwn(module, tensorName)) throw new TypeError(`${fn}: module ${module.constructor.name} has an own field named ${describeValue(tensorName)}`);
  const made = new ParametrizationList(parametrization, own.t, own.isParameter, unsafe);
  (own.isParameter ? module._parameters : module._buffers).delete(tensorName);
  let d = dict;
  if (!d) {
    injectClass(module);
    d = new ModuleDict();
    module.registerModule('parametrizations', d);
  }
  d.registerModule(tensorName, made);
  // `module.parametrizations.weight`, as in PyTorch (`get(name)` where the name is one of ModuleDict's members)
  if (!(tensorName in d)) Object.defineProperty(d, tensorName, { get: () => d.get(tensorName), configurable: true, enumerable: true });
  Object.defineProperty(Object.getPrototypeOf(module), tensorName, {
    get(this: Module) {
      return dictOf(this)!.get(tensorName)!.forward();
    },
    set(this: Module, value: Tensor) {
      dictOf(this)!.get(tensorName)!.rightInverse(value);
    },
    configurable: true,
  });
  return module as Parametrized<M>;
}

/**
 * @internal A layer's weight as the fused trainer takes it (Linear's and the convolutions' nativeFields()): the
 * parameter, or under spectral norm its original (the tensor the optimizer trains) and the SpectralNorm's own
 * fields (u, v, the numbers), which native/sequential.h runs as PyTorch's _SpectralNorm. toNativeLayers
 * (ts/nn/from-spec.ts) has refused every other parametrization.
 */
export function nativeWeight(module: Module): { weight: NativeTensor; spectralNorm: ReturnType<SpectralNorm['nativeFields']> | null } {
  const list = dictOf(module)?.get('weight');
  if (!list) return { weight: module._parameters.get('weight')!._native, spectralNorm: null };
  return { weight: list.original._native, spectralNorm: (list.at(0) as SpectralNorm).nativeFields() };
}

/** module.__class__ = Parametrized<Class>: a subclass of the module's own class, where the parametrized tensors' properties live. */
function injectClass(module: Module): void {
  const Base = module.constructor as new () => object; // never constructed: the module's prototype changes
  const Sub = class extends Base {
    get parametrizations(): ModuleDict {
      return dictOf(this as unknown as Module)!;
    }
  };
  Object.defineProperty(Sub, 'name', { value: `Parametrized${Base.name}` });
  Object.setPrototypeOf(module, Sub.prototype);
}

/**
 * Undoes registerParametrization for `tensorName`, as remove_parametrizations: the tensor becomes a plain
 * parameter (or buffer) again, the same Tensor object as `original`, holding the parametrized value
 * (`leaveParametrized`, the default; computing it runs a training-mode spectral norm's power iteration
 * once, as in PyTorch) or `original`'s.
 */
export function removeParametrizations<M extends Module>(module: M, tensorName: string, opts: { leaveParametrized?: boolean } = {}): M {
  const fn = 'removeParametrizations';
  const leave = readOptions(fn, opts, ['leaveParametrized'], { optional: true }).booleanOr('leaveParametrized', true);
  const dict = module instanceof Module ? dictOf(module) : undefined;
  const list = dict?.get(tensorName);
  if (!dict || !list)
    throw new TypeError(
      `${fn}: module ${module instanceof Module ? module.constructor.name : describeValue(module)} has no parametrization on ${describeValue(tensorName)}${dict ? ` (it has: ${dict.keys().join(', ')})` : ''}`,
    );
  const original = list.original;
  if (leave) {
    torch.scope(() =>
      torch.noGrad(() => {
        const t = list.forward();
        original._setData(t.detach()); // the same Tensor object: optimizers holding it keep it
      }),
    );
  }
  delete (Object.getPrototypeOf(module) as Record<string, unknown>)[tensorName];
  delete (dict as unknown as Record<string, unknown>)[tensorName];
  dict._modules.delete(tensorName);
  if (list.originalIsParameter) module.registerParameter(tensorName, original);
  else module.registerBuffer(tensorName, original);
  if (dict.keys().length === 0) {
    module._modules.delete('parametrizations');
    Object.setPrototypeOf(module, Object.getPrototypeOf(Object.getPrototypeOf(module)));
  }
  return module;
}
