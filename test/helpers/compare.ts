import { type Tensor } from '../../ts/tensor/tensor';
import * as torch from '../../ts/tensor/torch';

/** A value as Python's tolist() gives it (json.dumps of a tensor). */
export type Nested = number | Nested[];

/** max |t - ref| over the largest |ref| (1 where the reference is all zeros); the shapes must match. */
export function relDiff(t: Tensor, ref: Nested): number {
  const r = torch.tensor(ref as number[], { dtype: 'float64' });
  expect(t.shape).toEqual(r.shape);
  const scale = r.abs().max().item() || 1;
  return t.double().sub(r).abs().max().item() / scale;
}
