/**
 * `torch.autograd`: `grad`, as PyTorch's torch.autograd.grad. With `createGraph` the gradients are part of
 * the graph themselves, so a gradient penalty can be differentiated again (double backward).
 */
import { loadAddon, type NativeTensor } from '../native/addon';
import { readOptions, typeError } from '../util/options';
import { Tensor } from './tensor';

export interface GradOptions {
  /** The gradient of each output (a Tensor for one output); null or absent: ones, for scalar outputs only. */
  gradOutputs?: Tensor | (Tensor | null)[] | null;
  /** Keep the graph for another backward; defaults to createGraph, as in PyTorch. */
  retainGraph?: boolean;
  /** Record the gradients' own graph, for higher-order derivatives. Default false. */
  createGraph?: boolean;
  /** An input the outputs do not depend on gets null instead of an error. Default false. */
  allowUnused?: boolean;
}

const GRAD_KEYS = ['gradOutputs', 'retainGraph', 'createGraph', 'allowUnused'] as const;
const WHO = 'autograd.grad';

/** The native handles of a Tensor or an array of Tensors (null elements where `orNull`), each checked by name. */
function handles(value: unknown, name: string, orNull = false): (NativeTensor | null)[] {
  const list = value instanceof Tensor ? [value] : value;
  const form = orNull ? 'a Tensor or an array of Tensors (or nulls)' : 'a Tensor or an array of Tensors';
  if (!Array.isArray(list)) throw typeError(`${WHO}: ${name}`, form, value);
  return list.map((t: unknown, i) => {
    if (orNull && (t === null || t === undefined)) return null;
    if (!(t instanceof Tensor)) throw typeError(`${WHO}: ${name}[${i}]`, orNull ? 'a Tensor or null' : 'a Tensor', t);
    if (t.isDisposed) throw new Error(`${WHO}: ${name}[${i}] was disposed and cannot be used again`);
    return t._native;
  });
}

/**
 * The gradients of `outputs` with respect to each of `inputs` (sum over outputs of gradOutputs-weighted
 * vector-Jacobian products), as torch.autograd.grad: nothing is accumulated into `.grad`. One entry per
 * input; null only for an unused input with allowUnused.
 */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options?: GradOptions & { allowUnused?: false }): Tensor[];
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options: GradOptions): (Tensor | null)[];
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], options?: GradOptions): (Tensor | null)[] {
  const o = readOptions(WHO, options, GRAD_KEYS, { optional: true });
  const outs = handles(outputs, 'outputs') as NativeTensor[];
  const ins = handles(inputs, 'inputs') as NativeTensor[];
  const given = o.get('gradOutputs');
  const seeds = given === undefined || given === null ? null : handles(given, 'gradOutputs', true);
  const createGraph = o.booleanOr('createGraph', false);
  const flags = { createGraph, retainGraph: o.booleanOr('retainGraph', createGraph), allowUnused: o.booleanOr('allowUnused', false) };
  return loadAddon()
    .autogradGrad(outs, ins, seeds, flags)
    .map((g) => (g ? new Tensor(g) : null));
}
