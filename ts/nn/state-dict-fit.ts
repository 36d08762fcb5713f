/**
 * A state_dict saved from someone else's module tree, fitted onto ours: a script's own class names its
 * layers (seed 004's `hidden0.0.weight ... out.0.weight`, seed 001's `fc1 ... fc4`) where the preset's
 * Sequential says `0.weight`, `2.weight`, ... Both list their tensors in module registration order, so
 * when the names differ the tensors are matched in order, each by its shape.
 */
import { type Tensor } from '../tensor/tensor';
import { type Module } from './module';

export class StateDictFitError extends Error {
  override name = 'StateDictFitError';
}

const shapeOf = (t: Tensor) => `[${t.shape.join(', ')}]`;

/** `given` renamed to `target`'s state_dict keys (the same tensors); throws naming the key and shapes that do not fit. */
export function fitStateDict(given: Record<string, Tensor>, target: Module, what: string): Record<string, Tensor> {
  const ours = Object.entries(target.stateDict());
  const theirs = Object.entries(given);
  if (ours.every(([k, t]) => given[k] && shapeOf(given[k]) === shapeOf(t)) && theirs.length === ours.length) return given;
  if (theirs.length !== ours.length) {
    const list = (e: [string, Tensor][]) =>
      `${e
        .slice(0, 4)
        .map(([k, t]) => `${k} ${shapeOf(t)}`)
        .join(', ')}${e.length > 4 ? ', ...' : ''}`;
    throw new StateDictFitError(`${what}: holds ${theirs.length} tensors (${list(theirs)}), but the generator has ${ours.length} (${list(ours)})`);
  }
  const out: Record<string, Tensor> = {};
  ours.forEach(([k, t], i) => {
    const [gk, gt] = theirs[i];
    if (shapeOf(gt) !== shapeOf(t) || gt.dtype !== t.dtype) {
      throw new StateDictFitError(
        `${what}: '${gk}' ${gt.dtype} ${shapeOf(gt)} does not fit the generator's '${k}' ${t.dtype} ${shapeOf(t)} (tensor ${i + 1} of ${ours.length}; tensors are matched in order when the names differ)`,
      );
    }
    out[k] = gt;
  });
  return out;
}
