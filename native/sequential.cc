#include "sequential.h"

#include <c10/util/Exception.h>

namespace ltg {

// Each case calls the same ATen op as torch.nn's module of that name, so the fused path computes
// what the facade (and PyTorch) computes, including RNG use by dropout.
at::Tensor Sequential::forward(at::Tensor x) const {
  for (const auto& l : layers) {
    switch (l.kind) {
      case Layer::Kind::Linear:
        TORCH_CHECK(x.dim() >= 1 && x.size(-1) == l.weight.size(1), "Linear ", l.name, ": expected input with last dimension ",
                    l.weight.size(1), ", got shape ", x.sizes());
        x = at::linear(x, l.weight, l.bias.defined() ? std::optional<at::Tensor>(l.bias) : std::nullopt);
        break;
      case Layer::Kind::ReLU: x = at::relu(x); break;
      case Layer::Kind::LeakyReLU: x = at::leaky_relu(x, l.slope); break;
      case Layer::Kind::Tanh: x = at::tanh(x); break;
      case Layer::Kind::Sigmoid: x = at::sigmoid(x); break;
      case Layer::Kind::Dropout: x = at::dropout(x, l.p, training); break;
      case Layer::Kind::BatchNorm1d: {
        double momentum = l.momentum;
        if (training && l.numBatchesTracked.defined()) l.numBatchesTracked.add_(1);
        x = at::batch_norm(x, l.weight, l.bias, l.runningMean, l.runningVar, training, momentum, l.eps,
                           at::globalContext().userEnabledCuDNN());
        break;
      }
      case Layer::Kind::Flatten: x = x.flatten(l.startDim, l.endDim); break;
      case Layer::Kind::Unflatten: x = x.unflatten(l.dim, l.sizes); break;
    }
  }
  return x;
}

std::vector<at::Tensor> Sequential::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& l : layers) {
    if (l.weight.defined()) out.push_back(l.weight);
    if (l.bias.defined()) out.push_back(l.bias);
  }
  return out;
}

int64_t Sequential::inFeatures() const {
  for (const auto& l : layers)
    if (l.kind == Layer::Kind::Linear) return l.weight.size(1);
  return -1;
}

}  // namespace ltg
