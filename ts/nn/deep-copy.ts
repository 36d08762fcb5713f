/** **The** deep copy of a module (Python's copy.deepcopy): AveragedModel's copy, and whatever else needs a module of its own. */
import { keep } from '../tensor/scope';
import { Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';
import { isPlainObject } from '../util/describe';
import { typeError } from '../util/options';
import { Module } from './module';

/**
 * copy.deepcopy of a module: the same classes and fields, each tensor a new one (cloned, detached, its
 * requiresGrad kept, its gradient not copied, as a Parameter's deepcopy), tensors and modules shared
 * within the tree shared in the copy too. Own properties are copied (arrays, Maps and plain objects
 * deeply); functions are shared, as deepcopy shares them, and so are instances of other classes, which
 * deepcopy would copy (the library's modules hold none). A class's #private fields cannot be reached, so a
 * module that has them cannot be copied this way. The copy's tensors are its own (no torch.scope frees
 * them); if copying fails, those made so far are freed.
 */
export function deepCopyModule<M extends Module>(model: M, who = 'deepCopyModule'): M {
  if (!(model instanceof Module)) throw typeError(`${who}: model`, 'an nn.Module', model);
  for (const [name, t] of [...model.namedParameters(), ...model.namedBuffers()])
    if (t.isDisposed) throw new Error(`${who}: the model's tensor ${name} was disposed and cannot be copied`);
  const memo = new Map<object, unknown>();
  const made: Tensor[] = [];
  const copyObject = (o: object): object => {
    const c = Object.create(Object.getPrototypeOf(o)) as object;
    memo.set(o, c);
    for (const key of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, key)!;
      if ('value' in d) d.value = copy(d.value);
      Object.defineProperty(c, key, d);
    }
    return c;
  };
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    if (memo.has(v)) return memo.get(v);
    if (v instanceof Tensor) {
      const c = keep(torch.noGrad(() => v.detach().clone()));
      made.push(c);
      if (v.requiresGrad) c.requiresGrad = true;
      memo.set(v, c);
      return c;
    }
    if (v instanceof Map) {
      const m = new Map();
      memo.set(v, m);
      for (const [k, x] of v) m.set(k, copy(x));
      return m;
    }
    if (Array.isArray(v)) {
      const a: unknown[] = [];
      memo.set(v, a);
      for (const x of v) a.push(copy(x));
      return a;
    }
    if (v instanceof Module || isPlainObject(v)) return copyObject(v);
    return v;
  };
  try {
    return copy(model) as M;
  } catch (e) {
    for (const t of made) t.dispose();
    throw e;
  }
}
