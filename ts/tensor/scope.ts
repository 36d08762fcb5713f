/**
 * Deterministic freeing of native tensors. `scope(fn)` frees every tensor created while fn runs,
 * except those it returns (found in arrays and plain objects) and those passed to `keep()`.
 * GC finalizers remain the last resort for tensors that escape both.
 *
 * Modules own their tensors: a parameter or buffer is taken out of every scope when it is registered,
 * and Module.to converts in place, so a module built or converted inside a scope keeps working after
 * it, whether fn returns it or not; `module.dispose()` frees its tensors.
 */

// Node 20 defines Symbol.dispose on its main realm only; define it where missing (vm contexts such as
// jest's) so that `using t = ...` works there too (tensor.ts imports this file).
(Symbol as { dispose?: symbol }).dispose ??= Symbol.for('nodejs.dispose');

export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const stack: Set<Disposable>[] = [];

/** @internal called by every new Tensor. */
export function track(t: Disposable): void {
  if (stack.length) stack[stack.length - 1].add(t);
}

/** Exempts tensors from the enclosing scopes' cleanup. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of stack) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  if (out.has(value)) return;
  out.add(value);
  if (Array.isArray(value)) for (const v of value) collect(v, out, depth + 1);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, depth + 1);
}

/**
 * Runs fn (synchronous) and frees every tensor created while it ran, except: the tensors it returns,
 * directly or in arrays, Maps and plain objects (4 levels deep), which move to the enclosing scope; those
 * passed to `keep()`; and the parameters and buffers of modules, which their module owns (so
 * `scope(() => new nn.Linear(3, 2))` and `scope(() => model.to('float64'))` leave the module intact).
 * If fn throws, everything it created is freed and the error propagates.
 */
export function scope<T>(fn: () => T): T {
  const mine = new Set<Disposable>();
  stack.push(mine);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    stack.pop();
    for (const t of mine) t.dispose();
    throw e;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const t of mine) t.dispose();
    throw new TypeError('scope(fn): fn must be synchronous (tensors of an async function cannot be tracked across awaits)');
  }
  const returned = new Set<unknown>();
  collect(result, returned);
  const parent = stack[stack.length - 1];
  for (const t of mine) {
    if (returned.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}
