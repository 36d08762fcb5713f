#include "fast_net.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <string>

#include "conv_gemm.h"
#include "dropout_mask.h"

namespace ltg {

namespace {
bool isActivation(Layer::Kind k) {
  return k == Layer::Kind::ReLU || k == Layer::Kind::LeakyReLU || k == Layer::Kind::Tanh || k == Layer::Kind::Sigmoid;
}

bool dropoutActive(const Layer& l, bool training) { return training && l.p > 0; }

const char* kindName(Layer::Kind k) {
  return k == Layer::Kind::Linear ? "Linear" : k == Layer::Kind::Conv2d ? "Conv2d" : "ConvTranspose2d";
}

// A Sequential's layers by the rank of what they read: 2 ([N, features]) or 4 ([N, C, H, W]).
std::vector<int> layerRanks(const Sequential& s) {
  std::vector<int> out;
  int rank = s.layers.empty() || s.layers[0].kind == Layer::Kind::Linear ? 2 : 4;
  for (const auto& l : s.layers) {
    out.push_back(rank);
    if (l.kind == Layer::Kind::Flatten) rank = 2;
    if (l.kind == Layer::Kind::Unflatten) rank = 4;
  }
  return out;
}
}  // namespace

std::string FastNet::unsupported(const Sequential& s, const char* which) {
  const std::string the = std::string("the ") + which + "'s ";
  if (s.layers.empty() || (s.layers[0].kind != Layer::Kind::Linear && !s.layers[0].isConv()))
    return the + "first layer is not a Linear, Conv2d or ConvTranspose2d";
  std::vector<int> ranks = layerRanks(s);
  bool conv = false;
  for (const auto& l : s.layers) conv = conv || l.isConv();
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    switch (l.kind) {
      case Layer::Kind::Linear:
      case Layer::Kind::Conv2d:
      case Layer::Kind::ConvTranspose2d:
        // Its backward runs through weight / sigma, which this path does not write out: autograd does.
        if (l.spectralNorm) return the + kindName(l.kind) + " " + l.name + " has spectral norm";
        if ((l.kind == Layer::Kind::Linear) != (ranks[i] == 2))
          return the + kindName(l.kind) + " " + l.name + " reads an input of another rank";
        break;
      case Layer::Kind::ReLU:
      case Layer::Kind::Tanh:
      case Layer::Kind::Sigmoid: break;
      case Layer::Kind::BatchNorm1d:
      case Layer::Kind::BatchNorm2d:
        if ((l.kind == Layer::Kind::BatchNorm2d) != (ranks[i] == 4)) return the + "BatchNorm " + l.name + " reads an input of another rank";
        break;
      case Layer::Kind::LeakyReLU:
        if (l.slope < 0) return the + "LeakyReLU " + l.name + " has a negative slope";
        break;
      case Layer::Kind::Dropout:
        if (l.p >= 1) return the + "Dropout " + l.name + " has p = 1";
        break;
      case Layer::Kind::Flatten:
        if (ranks[i] != 4 || l.startDim != 1 || (l.endDim != -1 && l.endDim != 3))
          return the + "Flatten " + l.name + " is not [N, C, H, W] -> [N, C*H*W]";
        break;
      case Layer::Kind::Unflatten:
        if (ranks[i] != 2 || l.dim != 1 || l.sizes.size() != 3)
          return the + "Unflatten " + l.name + " is not [N, features] -> [N, C, H, W]";
        break;
    }
  }
  // A dropout mask is drawn before its layer's input exists (in the order of separate passes), so its
  // width must be known beforehand: an MLP's (its last Linear's), not a feature map's.
  if (conv)
    for (const auto& l : s.layers)
      if (l.kind == Layer::Kind::Dropout) return the + "Dropout " + l.name + " is in a convolutional net";
  for (const auto& l : s.layers)
    if (!conv && (l.kind == Layer::Kind::Flatten || l.kind == Layer::Kind::Unflatten))
      return the + (l.kind == Layer::Kind::Flatten ? "Flatten " : "Unflatten ") + l.name + " is in an MLP";
  return "";
}

FastNet::FastNet(const Sequential& s) : seq(s) {
  opts_ = s.layers[0].weight.options().requires_grad(false);
  // oneDNN's convolutions run fastest on channels-last feature maps on the CPU (bench/RESULTS.md).
  bool conv = false;
  for (const auto& l : s.layers) conv = conv || l.isConv();
  if (conv && opts_.device().is_cpu()) format_ = at::MemoryFormat::ChannelsLast;
  int cur = -1;
  int64_t width = -1;  // an MLP's features after the last Linear (a Dropout mask's width)
  maskWidths_.assign(s.layers.size(), -1);
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    Node nd{Op::Linear, i, cur, cur};
    if (l.kind == Layer::Kind::Linear) {
      width = l.weight.size(0);
      nd.out = buffers_++;
    } else if (l.isConv()) {
      nd.op = Op::Conv;
      nd.out = buffers_++;
    } else if (isActivation(l.kind)) {
      nd.op = Op::Act;
      // In place unless the previous layer is an activation, whose backward reads its own output.
      if (nodes_.back().op == Op::Act) nd.out = buffers_++;
    } else if (l.kind == Layer::Kind::Dropout) {
      nd.op = Op::Dropout;
      maskWidths_[i] = width;
      nd.out = buffers_++;
    } else if (l.isBatchNorm()) {
      nd.op = Op::BatchNorm;
      nd.out = buffers_++;
    } else {
      nd.op = Op::Reshape;
      nd.out = buffers_++;
    }
    nodes_.push_back(nd);
    cur = nd.out;
  }
  layerGrads_.resize(s.layers.size());
  for (size_t i = 0; i < s.layers.size(); ++i) {
    const Layer& l = s.layers[i];
    if (l.weight.defined()) layerGrads_[i][0] = at::zeros_like(l.weight, at::MemoryFormat::Contiguous);
    if (l.bias.defined()) layerGrads_[i][1] = at::zeros_like(l.bias, at::MemoryFormat::Contiguous);
  }
}

FastNet::Buffers& FastNet::current() { return byRows_.at(rows_); }
const FastNet::Buffers& FastNet::current() const { return byRows_.at(rows_); }

void FastNet::reserve(int64_t rows) {
  rows_ = rows;
  if (byRows_.count(rows)) return;
  // Kept for every batch size seen (an epoch has at most two): a captured CUDA graph reads and writes
  // the very buffers of its batch size on every replay.
  Buffers& b = byRows_[rows];
  b.rows = rows;
  b.vals.resize(buffers_);
  b.grads.resize(buffers_);
  b.masks.resize(nodes_.size());
  b.saveMean.resize(nodes_.size());
  b.saveInvstd.resize(nodes_.size());
}

at::Tensor FastNet::take(at::Tensor& t, int64_t start, int64_t rows, at::IntArrayRef sample) const {
  const int64_t dim = int64_t(sample.size()) + 1;
  const at::MemoryFormat format = dim == 4 ? format_ : at::MemoryFormat::Contiguous;
  bool fits = t.defined() && t.size(0) >= start + rows && t.dim() == dim && t.is_contiguous(format) && t.sizes().slice(1) == sample;
  if (!fits) {
    std::vector<int64_t> sizes{std::max(current().rows, start + rows)};
    sizes.insert(sizes.end(), sample.begin(), sample.end());
    t = at::empty(sizes, opts_.memory_format(format));
  }
  return t.narrow(0, start, rows);
}

// As at::dropout on CPU: mask = bernoulli(1 - p) / (1 - p), drawn from the global generator (dropout_mask.h).
void FastNet::drawMasks(int64_t start, int64_t rows) {
  Buffers& b = current();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Layer& l = seq.layers[nodes_[i].layer];
    if (nodes_[i].op != Op::Dropout || !dropoutActive(l, seq.training)) continue;
    at::Tensor m = take(b.masks[i], start, rows, {maskWidths_[nodes_[i].layer]});
    drawDropoutMask(m, l.p);
  }
}

at::Tensor FastNet::inFormat(const at::Tensor& x) const {
  // clone, not contiguous(): a [N, C, 1, 1] tensor counts as both formats, but oneDNN picks its output's
  // format from the strides, which only clone(format) sets.
  return x.dim() == 4 && x.suggest_memory_format() != format_ ? x.clone(format_) : x;
}

at::Tensor FastNet::forward(const at::Tensor& input, int64_t rows, int64_t halves) {
  Buffers& b = current();
  const int64_t per = rows / halves;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const Node& nd = nodes_[i];
    const Layer& l = seq.layers[nd.layer];
    at::Tensor x = nd.in < 0 ? input : b.vals[nd.in].narrow(0, 0, rows);
    at::Tensor& slot = b.vals[nd.out];
    switch (nd.op) {
      case Op::Linear: {
        TORCH_CHECK(x.dim() == 2 && x.size(1) == l.weight.size(1), "Linear ", l.name, ": expected input with last dimension ",
                    l.weight.size(1), ", got shape ", x.sizes());
        at::Tensor y = take(slot, 0, rows, {l.weight.size(0)});
        // What at::linear runs for a 2-D input, into the layer's buffer.
        if (l.bias.defined()) at::addmm_out(y, l.bias, x, l.weight.t());
        else at::mm_out(y, x, l.weight.t());
        break;
      }
      case Op::Conv:
        // The kernel at::conv2d / at::conv_transpose2d runs; it allocates its output, which the slot keeps.
        checkConvInput(l, x);
        if (convAsProducts(l, x)) {
          slot = inFormat(convProductsForward(l, inFormat(x)));
          break;
        }
        slot = inFormat(l.kind == Layer::Kind::Conv2d
                            ? at::conv2d(inFormat(x), l.weight, optionalTensor(l.bias), l.stride, l.padding, l.dilation, l.groups)
                            : at::conv_transpose2d(inFormat(x), l.weight, optionalTensor(l.bias), l.stride, l.padding, l.outputPadding,
                                                   l.groups, l.dilation));
        break;
      case Op::Act: {
        at::Tensor y = nd.in == nd.out ? x : take(slot, 0, rows, x.sizes().slice(1));
        if (nd.in != nd.out) y.copy_(x);
        if (l.kind == Layer::Kind::ReLU) y.relu_();
        else if (l.kind == Layer::Kind::LeakyReLU) at::leaky_relu_(y, l.slope);
        else if (l.kind == Layer::Kind::Tanh) y.tanh_();
        else y.sigmoid_();
        break;
      }
      case Op::Dropout: {
        at::Tensor y = take(slot, 0, rows, x.sizes().slice(1));
        if (dropoutActive(l, seq.training)) at::mul_out(y, x, b.masks[i].narrow(0, 0, rows));
        else y.copy_(x);
        break;
      }
      case Op::BatchNorm: {
        const bool twoD = l.kind == Layer::Kind::BatchNorm2d;
        int64_t features = l.runningMean.defined() ? l.runningMean.size(0) : l.weight.defined() ? l.weight.size(0) : x.size(1);
        TORCH_CHECK(x.dim() == (twoD ? 4 : 2) && x.size(1) == features, twoD ? "BatchNorm2d " : "BatchNorm1d ", l.name, ": expected ",
                    features, " channels (num_features) in dimension 1, got shape ", x.sizes());
        at::Tensor y = take(slot, 0, rows, x.sizes().slice(1));
        for (int64_t h = 0; h < halves; ++h) {
          if (seq.training && l.numBatchesTracked.defined()) l.numBatchesTracked.add_(1);
          at::Tensor yh = y.narrow(0, h * per, per);
          for (at::Tensor* t : {&b.saveMean[i][h], &b.saveInvstd[i][h]})
            if (!t->defined() || t->size(0) != features) *t = at::empty({features}, opts_);
          at::native_batch_norm_out(yh, b.saveMean[i][h], b.saveInvstd[i][h], x.narrow(0, h * per, per), optionalTensor(l.weight),
                                    optionalTensor(l.bias), optionalTensor(l.runningMean), optionalTensor(l.runningVar),
                                    l.usesBatchStats(seq.training), l.momentum, l.eps);
        }
        break;
      }
      case Op::Reshape: {
        at::Tensor shaped = l.kind == Layer::Kind::Flatten ? x.flatten(1) : x.unflatten(1, l.sizes);
        take(slot, 0, rows, shaped.sizes().slice(1)).copy_(shaped);
        break;
      }
    }
  }
  return b.vals[nodes_.back().out].narrow(0, 0, rows);
}

at::Tensor FastNet::outputGrad(int64_t start, int64_t rows) {
  Buffers& b = current();
  int out = nodes_.back().out;
  return take(b.grads[out], start, rows, b.vals[out].sizes().slice(1));
}

// The kernels autograd's ReluBackward/LeakyReluBackward/TanhBackward/SigmoidBackward call, from the output.
void FastNet::activationBackward(const Node& nd, const at::Tensor& dY, const at::Tensor& y, const at::Tensor& dX) const {
  const Layer& l = seq.layers[nd.layer];
  at::Tensor out = dX;
  if (l.kind == Layer::Kind::ReLU) at::threshold_backward_out(out, dY, y, 0);
  else if (l.kind == Layer::Kind::LeakyReLU) at::leaky_relu_backward_out(out, dY, y, l.slope, /*self_is_result=*/true);
  else if (l.kind == Layer::Kind::Tanh) at::tanh_backward_out(out, dY, y);
  else at::sigmoid_backward_out(out, dY, y);
}

void FastNet::backward(const at::Tensor& input, int64_t start, int64_t rows, int64_t halves, bool weightGrads,
                       const at::Tensor& inputGrad) {
  Buffers& b = current();
  const int64_t per = rows / halves, block0 = start / per;  // BatchNorm's row blocks, as forward numbered them
  for (size_t k = nodes_.size(); k-- > 0;) {
    const Node& nd = nodes_[k];
    const Layer& l = seq.layers[nd.layer];
    at::Tensor dY = b.grads[nd.out].narrow(0, start, rows);
    bool wantDX = nd.in >= 0 || inputGrad.defined();
    at::Tensor x = nd.in < 0 ? input : b.vals[nd.in].narrow(0, start, rows);
    // The net's input gradient may be asked for its first features or channels only (a conditional D's
    // image, not its one-hot labels): the first layer's weight and input narrowed to them give exactly those.
    const bool part = nd.in < 0 && inputGrad.defined() && inputGrad.size(1) < x.size(1);
    // The input's gradient: a buffer shaped as the input (the convolution below assigns its own instead).
    auto dXof = [&]() { return nd.in >= 0 ? take(b.grads[nd.in], start, rows, b.vals[nd.in].sizes().slice(1)) : inputGrad; };
    auto& g = layerGrads_[nd.layer];
    switch (nd.op) {
      case Op::Linear: {
        // AddmmBackward0's products: dW = dY^T x, db = sum of dY's rows, dx = dY W.
        if (weightGrads) {
          at::mm_out(g[0], dY.t(), x);
          if (l.bias.defined()) at::sum_out(g[1], dY, {0});
        }
        if (wantDX) {
          at::Tensor dX = dXof();
          at::mm_out(dX, dY, part ? l.weight.narrow(1, 0, dX.size(1)) : l.weight);
        }
        break;
      }
      case Op::Conv: {
        // ConvolutionBackward0's kernel, for the gradients wanted.
        const bool transposed = l.kind == Layer::Kind::ConvTranspose2d;
        const bool wb = weightGrads && l.bias.defined();
        at::OptionalIntArrayRef biasSizes = l.bias.defined() ? at::OptionalIntArrayRef(l.bias.sizes()) : std::nullopt;
        auto conv = [&](const Layer& c, const at::Tensor& in, std::array<bool, 3> mask) {
          return convAsProducts(c, in) ? convProductsBackward(c, dY, inFormat(in), mask)
                                       : at::convolution_backward(dY, inFormat(in), c.weight, biasSizes, c.stride, c.padding, c.dilation,
                                                                  transposed, c.outputPadding, c.groups, mask);
        };
        at::Tensor gi, gw, gb;
        if (part) {
          // The input's first channels alone: the same convolution over them and their slice of the weight.
          Layer sliced = l;
          sliced.weight = l.weight.narrow(transposed ? 0 : 1, 0, inputGrad.size(1));
          gi = std::get<0>(conv(sliced, x.narrow(1, 0, inputGrad.size(1)), {true, false, false}));
          if (weightGrads) std::tie(std::ignore, gw, gb) = conv(l, x, {false, true, wb});
        } else {
          std::tie(gi, gw, gb) = conv(l, x, {wantDX, weightGrads, wb});
        }
        if (weightGrads) g[0].copy_(gw);
        if (wb) g[1].copy_(gb);
        if (!wantDX) break;
        // A gradient of whole rows from 0 becomes the buffer itself (no copy); other rows are copied in.
        if (nd.in >= 0 && start == 0) b.grads[nd.in] = inFormat(gi);
        else dXof().copy_(gi);
        break;
      }
      case Op::Act: activationBackward(nd, dY, b.vals[nd.out].narrow(0, start, rows), dXof()); break;
      case Op::Dropout: {
        at::Tensor dX = dXof();
        if (dropoutActive(l, seq.training)) at::mul_out(dX, dY, b.masks[k].narrow(0, start, rows));
        else dX.copy_(dY);
        break;
      }
      case Op::BatchNorm: {
        // One batch's input gradient from row 0 becomes the buffer itself, as a convolution's (no copy).
        const bool own = wantDX && halves == 1 && start == 0 && nd.in >= 0;
        at::Tensor dX = wantDX && !own ? dXof() : at::Tensor();
        // Each batch alone, as its forward; parameter gradients of two batches add up as autograd accumulates them.
        for (int64_t h = 0; h < halves; ++h) {
          bool wg = weightGrads && l.weight.defined();
          auto [gi, gw, gb] = at::native_batch_norm_backward(
              dY.narrow(0, h * per, per), x.narrow(0, h * per, per), optionalTensor(l.weight), optionalTensor(l.runningMean),
              optionalTensor(l.runningVar), b.saveMean[k][block0 + h], b.saveInvstd[k][block0 + h], l.usesBatchStats(seq.training), l.eps,
              {wantDX, wg, wg && l.bias.defined()});
          if (own) b.grads[nd.in] = inFormat(gi);
          else if (wantDX) dX.narrow(0, h * per, per).copy_(gi);
          if (wg) h == 0 ? g[0].copy_(gw) : g[0].add_(gw);
          if (wg && l.bias.defined()) h == 0 ? g[1].copy_(gb) : g[1].add_(gb);
        }
        break;
      }
      case Op::Reshape: dXof().copy_(dY.reshape(x.sizes())); break;
    }
    if (nd.in < 0) break;
  }
}

void FastNet::attachGrads() {
  for (size_t i = 0; i < seq.layers.size(); ++i) {
    const Layer& l = seq.layers[i];
    const at::Tensor* ps[2] = {&l.weight, &l.bias};
    for (int j = 0; j < 2; ++j) {
      at::Tensor p = *ps[j];
      if (p.defined() && !p.grad().is_same(layerGrads_[i][j])) p.mutable_grad() = layerGrads_[i][j];
    }
  }
}

}  // namespace ltg
