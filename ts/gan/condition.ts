/**
 * The facade's side of ConditioningSpec (step-spec.ts): labels as one-hot planes concatenated to a
 * model's input, and fake labels drawn uniformly. native/gan_step.cc does the same ops in the same order.
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
