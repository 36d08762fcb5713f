/** nn.Module: parameters, buffers and submodules, with PyTorch's naming, state dicts and modes. */
import { type Device, type DType, describeValue, isFloatingDtype, parseToTarget, type ToTarget } from '../tensor/dtype';
import { readOptions } from '../util/options';
import { keep } from '../tensor/scope';
import { Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

/**
 * A module owns its parameters and buffers: they are never freed by the torch.scope() they were created
 * or converted in (so a module built or converted in a scope, returned or not, stays usable), only by
 * module.dispose() or, as a last resort, by the GC.
 */
export abstract class Module {
  training = true;
  /** @internal */ readonly _parameters = new Map<string, Tensor | null>();
  /** @internal */ readonly _buffers = new Map<string, Tensor | null>();
  /** @internal */ readonly _modules = new Map<string, Module>();

  abstract forward(input: Tensor): Tensor;

  /** Runs forward, as calling a PyTorch module does. */
  call(input: Tensor): Tensor {
    if (!(input instanceof Tensor)) throw new TypeError(`${this.constructor.name}: expected a Tensor input, got ${input === null ? 'null' : typeof input}`);
    return this.forward(input);
  }

  registerParameter(name: string, t: Tensor | null): void {
    this.checkOwned(name, t, 'parameter');
    if (t && !t.requiresGrad) t.requiresGrad = true;
    this._parameters.set(name, t);
  }
  registerBuffer(name: string, t: Tensor | null): void {
    this.checkOwned(name, t, 'buffer');
    this._buffers.set(name, t);
  }
  /** A parameter or buffer must be a Tensor or null; from now on the module, not a scope, owns it. */
  private checkOwned(name: string, t: unknown, what: string): void {
    if (t !== null && !(t instanceof Tensor)) throw new TypeError(`cannot assign ${describeValue(t)} as ${what} '${name}' (a Tensor or null required)`);
    if (t) keep(t);
  }
  registerModule(name: string, m: Module): void {
    this._modules.set(name, m);
  }

  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [name, m] of this._modules) yield* m.namedModules(prefix ? `${prefix}.${name}` : name);
  }
  children(): Module[] {
    return [...this._modules.values()];
  }
  /** [name, parameter] pairs; names equal PyTorch's state_dict keys ("0.weight", ...). */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, p] of m._parameters) if (p) out.push([prefix ? `${prefix}.${n}` : n, p]);
    }
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [n, b] of m._buffers) if (b) out.push([prefix ? `${prefix}.${n}` : n, b]);
    }
    return out;
  }
  /** Parameters and buffers by name, detached but sharing storage (as PyTorch's state_dict). */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      const key = (n: string) => (prefix ? `${prefix}.${n}` : n);
      for (const [n, p] of m._parameters) if (p) out[key(n)] = p.detach();
      for (const [n, b] of m._buffers) if (b) out[key(n)] = b.detach();
    }
    return out;
  }
  /**
   * Copies values in place, all or nothing: every problem is found before anything is copied, and one
   * error lists them all, worded as PyTorch's. A value that is not a live Tensor, or of another shape, is
   * an error in either mode. Strict (the default) also requires every key to be present, no other key,
   * and each tensor of the module's dtype; non-strict casts the dtype, as copy_ does.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    if (typeof sd !== 'object' || sd === null || Array.isArray(sd))
      throw new TypeError(`${this.constructor.name}.loadStateDict: expected a state dict (an object of Tensors by name), got ${describeValue(sd)}`);
    const strict = readOptions(`${this.constructor.name}.loadStateDict`, opts, ['strict'], { optional: true }).booleanOr('strict', true);
    // own keys only: "constructor" or "toString" must not count as present
    const has = (k: string) => Object.hasOwn(sd, k);
    const own = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
    const missingKeys = [...own.keys()].filter((k) => !has(k));
    const unexpectedKeys = Object.keys(sd).filter((k) => !own.has(k));
    const errors: string[] = [];
    for (const [k, t] of own) {
      if (!has(k)) continue;
      const src: unknown = sd[k];
      const copying = `While copying the parameter named "${k}",`;
      if (!(src instanceof Tensor)) errors.push(`${copying} expected a Tensor from checkpoint but received ${describeValue(src)}`);
      else if (src.isDisposed) errors.push(`${copying} the Tensor from checkpoint was disposed`);
      else if (t.isDisposed) errors.push(`${copying} the model's tensor was disposed`);
      else if (src.shape.join() !== t.shape.join())
        errors.push(
          `size mismatch for ${k}: copying a param with shape [${src.shape.join(', ')}] from checkpoint, the shape in current model is [${t.shape.join(', ')}].`,
        );
      else if (strict && src.dtype !== t.dtype)
        errors.push(`dtype mismatch for ${k}: copying a param with dtype ${src.dtype} from checkpoint, the dtype in current model is ${t.dtype}.`);
    }
    if (strict) {
      if (unexpectedKeys.length) errors.unshift(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
      if (missingKeys.length) errors.unshift(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    }
    if (errors.length) throw new Error(`Error(s) in loading state_dict for ${this.constructor.name}:\n\t${errors.join('\n\t')}`);
    torch.noGrad(() => {
      for (const [k, t] of own) if (has(k)) t.copy_(sd[k]);
    });
    return { missingKeys, unexpectedKeys };
  }
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /**
   * Converts parameters, buffers and gradients in place, as module.to in PyTorch: the same Tensor
   * objects, and the same native tensors (`param.data = ...`), so optimizers and fused steps built
   * before keep working on them. A dtype applies to floating tensors only (integer buffers keep theirs)
   * and must be a floating dtype. All or nothing: every tensor is converted before any is changed, so an
   * error (a disposed tensor, no CUDA, out of memory) leaves the module as it was.
   */
  to(target: Device | DType | ToTarget): this {
    const who = `${this.constructor.name}.to`;
    const { device, dtype } = parseToTarget(target, who);
    if (dtype !== undefined && !isFloatingDtype(dtype))
      throw new TypeError(`nn.Module.to only accepts floating point or complex dtypes, but got desired dtype=torch.${dtype}`);
    const plan: [Tensor, Tensor][] = []; // [tensor, its converted data]
    const temporaries: Tensor[] = [];
    const seen = new Set<Tensor>();
    const convert = (t: Tensor) => {
      const out = t.to({ device, dtype: dtype !== undefined && isFloatingDtype(t.dtype) ? dtype : undefined });
      // `to` hands back the tensor itself when it is already there: nothing to change
      if (out._native.sameAs(t._native)) temporaries.push(out);
      else plan.push([t, out]);
    };
    try {
      torch.noGrad(() => {
        for (const [name, t] of [...this.namedParameters(), ...this.namedBuffers()]) {
          if (seen.has(t)) continue; // shared between modules
          seen.add(t);
          try {
            convert(t);
            const g = t.grad;
            if (g) {
              temporaries.push(g);
              convert(g);
            }
          } catch (e) {
            throw new Error(`${who}(${typeof target === 'string' ? target : JSON.stringify(target)}): ${name}: ${(e as Error).message}`, { cause: e });
          }
        }
      });
    } catch (e) {
      for (const [, out] of plan) out.dispose();
      for (const t of temporaries) t.dispose();
      throw e;
    }
    try {
      for (const [t, out] of plan) t._setData(out); // shares out's storage: freeing out's handle below keeps the data
    } finally {
      for (const [, out] of plan) out.dispose();
      for (const t of temporaries) t.dispose();
    }
    return this;
  }
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }
  /** Frees every parameter and buffer now. */
  dispose(): void {
    for (const [, t] of [...this.namedParameters(), ...this.namedBuffers()]) t.dispose();
  }
  numParameters(): number {
    return this.parameters().reduce((a, p) => a + p.numel(), 0);
  }
  /** One line per module, like printing a PyTorch module. */
  toString(): string {
    const extra = this.extraRepr();
    const inner = [...this._modules].map(([n, m]) => `(${n}): ${m.toString().replace(/\n/g, '\n  ')}`);
    if (!inner.length) return `${this.constructor.name}(${extra})`;
    // as PyTorch: the module's own settings on the first line, then its children
    const lines = [...(extra ? extra.split('\n') : []), ...inner];
    return `${this.constructor.name}(\n  ${lines.join('\n  ')}\n)`;
  }
  extraRepr(): string {
    return '';
  }
}
