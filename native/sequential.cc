#include "sequential.h"

#include <c10/util/Exception.h>

#include <utility>

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

std::vector<at::Tensor> Sequential::tensors() const {
  std::vector<at::Tensor> out;
  for (const auto& l : layers)
    for (const at::Tensor* t : {&l.weight, &l.bias, &l.runningMean, &l.runningVar, &l.numBatchesTracked})
      if (t->defined()) out.push_back(*t);
  return out;
}

void Sequential::check(at::Device device, at::ScalarType dtype) const {
  for (const auto& l : layers) {
    const std::pair<const char*, const at::Tensor*> all[] = {{"weight", &l.weight},
                                                             {"bias", &l.bias},
                                                             {"running_mean", &l.runningMean},
                                                             {"running_var", &l.runningVar},
                                                             {"num_batches_tracked", &l.numBatchesTracked}};
    for (const auto& [field, t] : all) {
      if (!t->defined()) continue;
      TORCH_CHECK(t->device() == device, l.name, ".", field, " is on ", t->device(), ", the models on ", device,
                  "; move both to one device");
      if (t != &l.numBatchesTracked)
        TORCH_CHECK(t->scalar_type() == dtype, l.name, ".", field, " has dtype ", t->scalar_type(), ", the models' parameters ", dtype);
    }
    if (l.kind == Layer::Kind::Linear) {
      TORCH_CHECK(l.weight.dim() == 2, l.name, ".weight: expected shape [out_features, in_features], got ", l.weight.sizes());
      TORCH_CHECK(!l.bias.defined() || (l.bias.dim() == 1 && l.bias.size(0) == l.weight.size(0)), l.name, ".bias: expected shape [",
                  l.weight.size(0), "], got ", l.bias.sizes());
    }
    if (l.kind == Layer::Kind::BatchNorm1d) {
      int64_t n = -1;
      for (const auto& [field, t] : all) {
        if (!t->defined() || t == &l.numBatchesTracked) continue;
        if (n < 0 && t->dim() == 1) n = t->size(0);
        TORCH_CHECK(t->dim() == 1 && t->size(0) == n, l.name, ".", field, ": expected shape [", n < 0 ? 0 : n, "] (num_features), got ",
                    t->sizes());
      }
      TORCH_CHECK(!l.numBatchesTracked.defined() || l.numBatchesTracked.numel() == 1, l.name,
                  ".num_batches_tracked: expected one value, got shape ", l.numBatchesTracked.sizes());
    }
  }
}

int64_t Sequential::inFeatures() const {
  for (const auto& l : layers)
    if (l.kind == Layer::Kind::Linear) return l.weight.size(1);
  return -1;
}

}  // namespace ltg
