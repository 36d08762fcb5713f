/** Loss modules: thin wrappers over nn.functional with PyTorch's `reduction` option. */
import { type Tensor } from '../tensor/tensor';
import * as F from './functional';

abstract class Loss {
  constructor(readonly reduction: F.Reduction = 'mean') {}
  abstract forward(input: Tensor, target: Tensor): Tensor;
  call(input: Tensor, target: Tensor): Tensor {
    return this.forward(input, target);
  }
}

export class BCEWithLogitsLoss extends Loss {
  constructor(opts: { reduction?: F.Reduction; posWeight?: Tensor; weight?: Tensor } = {}) {
    super(opts.reduction);
    this.posWeight = opts.posWeight;
    this.weight = opts.weight;
  }
  readonly posWeight?: Tensor;
  readonly weight?: Tensor;
  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropyWithLogits(input, target, { reduction: this.reduction, posWeight: this.posWeight, weight: this.weight });
  }
}

export class BCELoss extends Loss {
  constructor(opts: { reduction?: F.Reduction; weight?: Tensor } = {}) {
    super(opts.reduction);
    this.weight = opts.weight;
  }
  readonly weight?: Tensor;
  forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropy(input, target, { reduction: this.reduction, weight: this.weight });
  }
}

export class MSELoss extends Loss {
  constructor(opts: { reduction?: F.Reduction } = {}) {
    super(opts.reduction);
  }
  forward(input: Tensor, target: Tensor): Tensor {
    return F.mseLoss(input, target, { reduction: this.reduction });
  }
}

export class CrossEntropyLoss extends Loss {
  constructor(opts: { reduction?: F.Reduction; weight?: Tensor; labelSmoothing?: number } = {}) {
    super(opts.reduction);
    this.weight = opts.weight;
    this.labelSmoothing = opts.labelSmoothing ?? 0;
  }
  readonly weight?: Tensor;
  readonly labelSmoothing: number;
  forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, { reduction: this.reduction, weight: this.weight, labelSmoothing: this.labelSmoothing });
  }
}
