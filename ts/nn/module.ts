/** nn.Module: parameters, buffers and submodules, with PyTorch's naming, state dicts and modes. */
import { type Device, type DType } from '../tensor/dtype';
import { Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

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
    if (t && !t.requiresGrad) t.requiresGrad = true;
    this._parameters.set(name, t);
  }
  registerBuffer(name: string, t: Tensor | null): void {
    this._buffers.set(name, t);
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
   * Copies values in place. Strict by default: missing or unexpected keys and shape mismatches throw
   * one error listing them all, worded as PyTorch's.
   */
  loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): { missingKeys: string[]; unexpectedKeys: string[] } {
    const strict = opts.strict ?? true;
    const own = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers()]);
    const missingKeys = [...own.keys()].filter((k) => !(k in sd));
    const unexpectedKeys = Object.keys(sd).filter((k) => !own.has(k));
    const errors: string[] = [];
    for (const [k, t] of own) {
      const src = sd[k];
      if (!src) continue;
      if (!(src instanceof Tensor)) errors.push(`value for ${k} is not a Tensor`);
      else if (src.shape.join() !== t.shape.join())
        errors.push(
          `size mismatch for ${k}: copying a param with shape [${src.shape.join(', ')}] from checkpoint, the shape in current model is [${t.shape.join(', ')}].`,
        );
    }
    if (strict) {
      if (unexpectedKeys.length) errors.unshift(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
      if (missingKeys.length) errors.unshift(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    }
    if (errors.length) throw new Error(`Error(s) in loading state_dict for ${this.constructor.name}:\n\t${errors.join('\n\t')}`);
    torch.noGrad(() => {
      for (const [k, t] of own) if (sd[k]) t.copy_(sd[k]);
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
  /** Moves parameters and buffers in place (the same Tensor objects), as module.to in PyTorch. */
  to(target: Device | DType): this {
    for (const [, m] of this.namedModules()) {
      for (const map of [m._parameters, m._buffers]) {
        for (const t of map.values()) {
          if (!t) continue;
          const isParam = map === m._parameters;
          if (!isParam && !/^(cpu|cuda)/.test(target) && !t.dtype.startsWith('float')) continue; // int buffers keep their dtype
          const moved = torch.noGrad(() => t.detach().to(target as Device));
          const rg = t.requiresGrad;
          t._replace(moved._native);
          if (rg) t.requiresGrad = true;
        }
      }
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
    const inner = [...this._modules].map(([n, m]) => `  (${n}): ${m.toString().replace(/\n/g, '\n  ')}`);
    return inner.length ? `${this.constructor.name}(\n${inner.join('\n')}\n)` : `${this.constructor.name}(${this.extraRepr()})`;
  }
  extraRepr(): string {
    return '';
  }
}
