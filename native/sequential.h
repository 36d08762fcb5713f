// A module tree flattened to a list of layers for native forward passes. The layers hold the very
// parameter tensors of the facade's modules (no copies), so the fused step trains the same weights.
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

namespace ltg {

struct Layer {
  // The layer kinds of the native executor (the fused GanStep). A new layer touches four places (ts/nn/spec.ts
  // keeps the TypeScript side of this list):
  //   native/sequential.h/.cc   a Kind, any fields it needs in Layer, its forward() case (the ATen op torch.nn's
  //                             module calls), parameters(), tensors() (what a running epoch locks), check()
  //   native/gan_spec_js.cc     kLayerKinds (its name) and the fields layersFromJs reads: what nativeFields() gives
  //   ts/nn/layers.ts (conv.ts, ...) the facade module: PyTorch's name, init and state-dict names, its `spec` schema,
  //                             `fromSpec`, `nativeFields()` (everything else in TS is derived from it)
  //   test/parity/reference.py  build() from the spec (regenerate.sh), and its case in test/nn/nn.test.ts
  // Spectral norm is no kind but a property of Linear, Conv2d and ConvTranspose2d (`spectralNorm` below).
  enum class Kind {
    Linear,
    ReLU,
    LeakyReLU,
    Tanh,
    Sigmoid,
    Dropout,
    BatchNorm1d,
    BatchNorm2d,
    Flatten,
    Unflatten,
    Conv2d,
    ConvTranspose2d
  };
  Kind kind;
  at::Tensor weight, bias;                                  // Linear, Conv2d, ConvTranspose2d, BatchNorm (affine)
  at::Tensor runningMean, runningVar, numBatchesTracked;   // BatchNorm buffers (none without trackRunningStats)
  double slope = 0.01, p = 0.5, eps = 1e-5, momentum = 0.1;
  int64_t startDim = 1, endDim = -1, dim = 1;
  std::vector<int64_t> sizes;                               // Unflatten
  // Conv2d, ConvTranspose2d: [h, w] pairs as torch.nn's modules hold them.
  std::vector<int64_t> stride{1, 1}, padding{0, 0}, dilation{1, 1}, outputPadding{0, 0};
  int64_t groups = 1;
  std::string name;                                         // state-dict prefix, for error messages
  // torch.nn.utils.parametrizations.spectral_norm of the weight (Linear, Conv2d, ConvTranspose2d): `weight` is
  // then the original (parametrizations.weight.original, what the optimizer trains) and forward() uses
  // weight / sigma, as PyTorch's _SpectralNorm computes it.
  struct SpectralNorm {
    at::Tensor u, v;  // the buffers _u [rows] and _v [columns] of the weight as a matrix; power iterations update them in place
    int64_t nPowerIterations = 1;
    double eps = 1e-12;
    int64_t dim = 0;  // the weight's dimension that becomes the matrix's rows (the rest flattened)
  };
  std::optional<SpectralNorm> spectralNorm;
  bool isConv() const { return kind == Kind::Conv2d || kind == Kind::ConvTranspose2d; }
  bool isBatchNorm() const { return kind == Kind::BatchNorm1d || kind == Kind::BatchNorm2d; }
  // As torch.nn: without running statistics (trackRunningStats false) BatchNorm uses batch statistics in eval too.
  bool usesBatchStats(bool training) const { return training || !runningMean.defined(); }
};

// An optional tensor argument of an ATen op: nullopt for an undefined tensor (a layer without bias, ...).
inline std::optional<at::Tensor> optionalTensor(const at::Tensor& t) { return t.defined() ? std::optional<at::Tensor>(t) : std::nullopt; }

// Throws (naming the layer) unless x fits the Conv2d or ConvTranspose2d layer l: [N, C, H, W] with its
// channels, the kernel within the padded input. ATen would say so too, but without the layer's name or the
// shapes a user wrote.
void checkConvInput(const Layer& l, const at::Tensor& x);

struct Sequential {
  std::vector<Layer> layers;
  bool training = true;
  at::Tensor forward(at::Tensor x) const;
  // The trained tensors: a spectral-normed layer's original weight, not the normalized one.
  std::vector<at::Tensor> parameters() const;
  // Parameters and buffers (spectral norm's u and v too): every tensor a forward pass reads or writes.
  std::vector<at::Tensor> tensors() const;
  // What the first Linear or convolution reads: its input features or channels (or -1 when there is
  // none), and the rank of the input it takes (2 for Linear, 4 for [N, C, H, W] convolutions, or -1).
  int64_t inFeatures() const;
  int64_t inputRank() const;
  // Throws (c10::Error, naming the layer) unless every parameter and buffer has the shape its layer
  // needs and sits on `device`, parameters in `dtype`: the executor then only meets tensors it can run.
  void check(at::Device device, at::ScalarType dtype) const;
};

}  // namespace ltg
