#include "sequential.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <optional>
#include <utility>
#include <vector>

namespace ltg {

void checkConvInput(const Layer& l, const at::Tensor& x) {
  bool transposed = l.kind == Layer::Kind::ConvTranspose2d;
  int64_t channels = transposed ? l.weight.size(0) : l.weight.size(1) * l.groups;
  const char* what = transposed ? "ConvTranspose2d " : "Conv2d ";
  TORCH_CHECK(x.dim() == 4 && x.size(1) == channels, what, l.name, ": expected input of shape [N, C, H, W] with C = ", channels,
              ", got shape ", x.sizes());
  if (transposed) return;
  for (int i = 0; i < 2; ++i) {
    int64_t kernel = l.dilation[i] * (l.weight.size(2 + i) - 1) + 1, padded = x.size(2 + i) + 2 * l.padding[i];
    TORCH_CHECK(kernel <= padded, what, l.name, ": kernel ", l.weight.size(2), "x", l.weight.size(3), " (dilation ", l.dilation[0], "x",
                l.dilation[1], ") is larger than the padded input ", x.size(2) + 2 * l.padding[0], "x", x.size(3) + 2 * l.padding[1],
                " (input ", x.size(2), "x", x.size(3), ", padding ", l.padding[0], "x", l.padding[1], ")");
  }
}

namespace {
// x / max(||x||_2, eps) into `out`: F.normalize(x, dim=0, eps=eps, out=out) on a vector, op for op.
void normalizeInto(at::Tensor out, const at::Tensor& x, double eps) {
  at::Tensor denom = at::linalg_vector_norm(x, 2, {0}, true).clamp_min_(eps).expand_as(x);
  at::div_out(out, x, denom);
}

// The weight a Linear or convolution computes with: its own, or weight / sigma under spectral norm, as
// PyTorch's _SpectralNorm.forward: in training first its _power_method (no grad, u and v in place), then
// sigma = vdot(u, W_mat v) on clones of u and v, so that a graph built by an earlier forward (D on the real
// batch before D on the fake one) keeps the u and v it used. W_mat is the weight with `dim` first, flattened(1).
at::Tensor layerWeight(const Layer& l, bool training) {
  if (!l.spectralNorm) return l.weight;
  const Layer::SpectralNorm& sn = *l.spectralNorm;
  at::Tensor mat = l.weight;
  if (sn.dim != 0) {
    std::vector<int64_t> order{sn.dim};
    for (int64_t d = 0; d < l.weight.dim(); ++d)
      if (d != sn.dim) order.push_back(d);
    mat = mat.permute(order);
  }
  mat = mat.flatten(1);
  if (training) {
    at::NoGradGuard noGrad;
    for (int64_t i = 0; i < sn.nPowerIterations; ++i) {
      normalizeInto(sn.u, at::mv(mat, sn.v), sn.eps);
      normalizeInto(sn.v, at::mv(mat.t(), sn.u), sn.eps);  // weight_mat.H: the transpose of a real matrix
    }
  }
  at::Tensor u = sn.u.clone(at::MemoryFormat::Contiguous), v = sn.v.clone(at::MemoryFormat::Contiguous);
  at::Tensor sigma = at::vdot(u, at::mv(mat, v));
  return l.weight / sigma;
}
}  // namespace

// Each case calls the same ATen op as torch.nn's module of that name, so the fused path computes
// what the facade (and PyTorch) computes, including RNG use by dropout.
at::Tensor Sequential::forward(at::Tensor x) const {
  for (const auto& l : layers) {
    switch (l.kind) {
      case Layer::Kind::Linear:
        TORCH_CHECK(x.dim() >= 1 && x.size(-1) == l.weight.size(1), "Linear ", l.name, ": expected input with last dimension ",
                    l.weight.size(1), ", got shape ", x.sizes());
        x = at::linear(x, layerWeight(l, training), optionalTensor(l.bias));
        break;
      case Layer::Kind::Conv2d:
        checkConvInput(l, x);
        x = at::conv2d(x, layerWeight(l, training), optionalTensor(l.bias), l.stride, l.padding, l.dilation, l.groups);
        break;
      case Layer::Kind::ConvTranspose2d:
        checkConvInput(l, x);
        x = at::conv_transpose2d(x, layerWeight(l, training), optionalTensor(l.bias), l.stride, l.padding, l.outputPadding, l.groups,
                                 l.dilation);
        break;
      case Layer::Kind::ReLU: x = at::relu(x); break;
      case Layer::Kind::LeakyReLU: x = at::leaky_relu(x, l.slope); break;
      case Layer::Kind::Tanh: x = at::tanh(x); break;
      case Layer::Kind::Sigmoid: x = at::sigmoid(x); break;
      case Layer::Kind::Dropout: x = at::dropout(x, l.p, training); break;
      case Layer::Kind::BatchNorm1d:
      case Layer::Kind::BatchNorm2d: {
        int64_t features = l.runningMean.defined() ? l.runningMean.size(0) : l.weight.defined() ? l.weight.size(0) : -1;
        bool twoD = l.kind == Layer::Kind::BatchNorm2d;
        TORCH_CHECK(twoD ? x.dim() == 4 : (x.dim() == 2 || x.dim() == 3), twoD ? "BatchNorm2d " : "BatchNorm1d ", l.name,
                    ": expected input of shape ", twoD ? "[N, C, H, W]" : "[N, C] or [N, C, L]", ", got shape ", x.sizes());
        TORCH_CHECK(features < 0 || x.size(1) == features, twoD ? "BatchNorm2d " : "BatchNorm1d ", l.name, ": expected ", features,
                    " channels (num_features) in dimension 1, got shape ", x.sizes());
        if (training && l.numBatchesTracked.defined()) l.numBatchesTracked.add_(1);
        x = at::batch_norm(x, l.weight, l.bias, l.runningMean, l.runningVar, l.usesBatchStats(training), l.momentum, l.eps,
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
  for (const auto& l : layers) {
    for (const at::Tensor* t : {&l.weight, &l.bias, &l.runningMean, &l.runningVar, &l.numBatchesTracked})
      if (t->defined()) out.push_back(*t);
    if (l.spectralNorm) out.insert(out.end(), {l.spectralNorm->u, l.spectralNorm->v});
  }
  return out;
}

namespace {
// u and v must be the vectors of the weight seen as a matrix: [size(dim)] and [numel / size(dim)].
void checkSpectralNorm(const Layer& l, at::Device device, at::ScalarType dtype) {
  const Layer::SpectralNorm& sn = *l.spectralNorm;
  TORCH_CHECK(l.kind == Layer::Kind::Linear || l.isConv(), l.name, ": spectral norm applies to Linear, Conv2d and ConvTranspose2d layers");
  TORCH_CHECK(sn.dim >= 0 && sn.dim < l.weight.dim(), l.name, ".spectralNorm.dim: expected a dimension of the weight (0 to ",
              l.weight.dim() - 1, "), got ", sn.dim);
  int64_t rows = l.weight.size(sn.dim), cols = rows ? l.weight.numel() / rows : 0;
  const std::pair<const char*, const at::Tensor*> vectors[] = {{"u", &sn.u}, {"v", &sn.v}};
  for (const auto& [field, t] : vectors) {
    int64_t want = t == &sn.u ? rows : cols;
    TORCH_CHECK(t->dim() == 1 && t->size(0) == want, l.name, ".spectralNorm.", field, ": expected shape [", want, "] (the weight ",
                l.weight.sizes(), " as a matrix with dimension ", sn.dim, " first), got ", t->sizes());
    TORCH_CHECK(t->device() == device, l.name, ".spectralNorm.", field, " is on ", t->device(), ", the models on ", device,
                "; move both to one device");
    TORCH_CHECK(t->scalar_type() == dtype, l.name, ".spectralNorm.", field, " has dtype ", t->scalar_type(), ", the models' parameters ",
                dtype);
  }
}
}  // namespace

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
    if (l.isConv()) {
      bool transposed = l.kind == Layer::Kind::ConvTranspose2d;
      TORCH_CHECK(l.weight.dim() == 4, l.name, ".weight: expected shape ",
                  transposed ? "[in_channels, out_channels / groups, kH, kW]" : "[out_channels, in_channels / groups, kH, kW]", ", got ",
                  l.weight.sizes());
      int64_t out = transposed ? l.weight.size(1) * l.groups : l.weight.size(0);
      TORCH_CHECK(!l.bias.defined() || (l.bias.dim() == 1 && l.bias.size(0) == out), l.name, ".bias: expected shape [", out, "], got ",
                  l.bias.sizes());
      for (const auto* v : {&l.stride, &l.padding, &l.dilation, &l.outputPadding})
        TORCH_CHECK(v->size() == 2, l.name, ": expected [h, w] pairs for stride, padding, dilation and outputPadding");
    }
    if (l.spectralNorm) checkSpectralNorm(l, device, dtype);
    if (l.isBatchNorm()) {
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
  for (const auto& l : layers) {
    if (l.kind == Layer::Kind::Linear) return l.weight.size(1);
    if (l.kind == Layer::Kind::Conv2d) return l.weight.size(1) * l.groups;
    if (l.kind == Layer::Kind::ConvTranspose2d) return l.weight.size(0);
  }
  return -1;
}

int64_t Sequential::inputRank() const {
  for (const auto& l : layers) {
    if (l.kind == Layer::Kind::Linear) return 2;
    if (l.isConv()) return 4;
    // A reshaping layer before the first weighted one: its input rank is not the weighted layer's.
    if (l.kind == Layer::Kind::Flatten || l.kind == Layer::Kind::Unflatten) return -1;
  }
  return -1;
}

}  // namespace ltg
