// A module tree flattened to a list of layers for native forward passes. The layers hold the very
// parameter tensors of the facade's modules (no copies), so the fused step trains the same weights.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

namespace ltg {

struct Layer {
  enum class Kind { Linear, ReLU, LeakyReLU, Tanh, Sigmoid, Dropout, BatchNorm1d, Flatten, Unflatten };
  Kind kind;
  at::Tensor weight, bias;                                  // Linear, BatchNorm1d (affine)
  at::Tensor runningMean, runningVar, numBatchesTracked;   // BatchNorm1d buffers
  double slope = 0.01, p = 0.5, eps = 1e-5, momentum = 0.1;
  int64_t startDim = 1, endDim = -1, dim = 1;
  std::vector<int64_t> sizes;                               // Unflatten
  std::string name;                                         // state-dict prefix, for error messages
};

struct Sequential {
  std::vector<Layer> layers;
  bool training = true;
  at::Tensor forward(at::Tensor x) const;
  std::vector<at::Tensor> parameters() const;
  // The input width the first Linear expects (or -1).
  int64_t inFeatures() const;
};

}  // namespace ltg
