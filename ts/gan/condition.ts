/**
 * The facade's side of ConditioningSpec (step-spec.ts): labels as one-hot planes concatenated to a
 * model's input, and fake labels drawn uniformly. native/gan_core.cc does the same ops in the same order.
 */
import * as F from '../nn/functional';
import { type Device } from '../tensor/dtype';
import { type Tensor } from '../tensor/tensor';
import * as torch from '../tensor/torch';

/** x ([N, F] or [N, C, H, W]) with y's one-hot rows appended in dimension 1 (spread over H x W). */
export function withOneHot(x: Tensor, y: Tensor, classes: number): Tensor {
  return torch.scope(() => {
    let oh = F.oneHot(y.long(), classes).to(x.dtype);
    if (x.ndim > 2) {
      const [n, , ...rest] = x.shape;
      oh = oh.view([n, classes, ...rest.map(() => 1)]).expand(n, classes, ...rest);
    }
    return torch.cat([x, oh], 1);
  });
}

/** n labels uniform in [0, classes) (int64), from the global generator as torch.randint(0, classes, (n,)). */
export function drawLabels(classes: number, n: number, device: Device = 'cpu'): Tensor {
  return torch.randint(0, classes, [n], { device });
}

/**
 * `count` labels as int64 [count] for a conditional model of `classes` classes: one label for all, or
 * one per image. `who` names the caller in errors, which name the bad value and the valid range.
 */
export function labelsFor(given: number | readonly number[], count: number, classes: number, who: string): Tensor {
  if (!classes) throw new TypeError(`${who}: labels apply to conditional presets (cgan); this generator is not conditional`);
  const list = typeof given === 'number' ? Array.from({ length: count }, () => given) : given;
  if (!Array.isArray(list)) throw new TypeError(`${who}: labels: expected a class index or an array of them, got ${JSON.stringify(given)}`);
  if (list.length !== count) throw new RangeError(`${who}: labels: expected ${count} labels (one per image), got ${list.length}`);
  for (const y of list) {
    if (!Number.isInteger(y) || y < 0 || y >= classes)
      throw new RangeError(`${who}: label ${JSON.stringify(y)} is outside [0, ${classes}) (the generator's ${classes} classes)`);
  }
  return torch.tensor(
    BigInt64Array.from(list, (y) => BigInt(y)),
    [count],
    { dtype: 'int64' },
  );
}

/** The labels of a grid with one row of `columns` images per class: 0 x columns, 1 x columns, ... */
export function rowPerClass(classes: number, columns: number): number[] {
  return Array.from({ length: classes * columns }, (_, i) => Math.floor(i / columns));
}
