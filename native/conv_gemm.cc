#include "conv_gemm.h"

#include <c10/util/Exception.h>

#include <vector>

namespace ltg {

namespace {
// At most this many columns in the im2col matrix (channels x kernel pixels on the thin side): the first
// and last layers of the DCGAN presets (1 x 4 x 4), not the 11-channel input of cgan's D (oneDNN is fast there).
constexpr int64_t kThinColumns = 32;

// [N, C, H, W] as rows of pixels [N * H * W, C]: a view of a channels-last tensor (a copy otherwise).
at::Tensor pixelRows(const at::Tensor& t) { return t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}); }

// Rows of pixels [N * H * W, C] as a channels-last [N, C, H, W] view.
at::Tensor fromPixelRows(const at::Tensor& rows, int64_t n, int64_t h, int64_t w) {
  return rows.view({n, h, w, rows.size(1)}).permute({0, 3, 1, 2});
}

// im2col of x [N, C, H, W] as rows [N * L, C * kh * kw] (L = the output's pixels).
at::Tensor colRows(const Layer& l, const at::Tensor& x) {
  at::Tensor cols = at::im2col(x.contiguous(), {l.weight.size(2), l.weight.size(3)}, l.dilation, l.padding, l.stride);  // [N, K, L]
  return cols.transpose(1, 2).reshape({-1, cols.size(1)});
}

// col2im of rows [N * L, C * kh * kw] into [N, C, H, W] (contiguous; channels-last for C = 1).
at::Tensor fromColRows(const Layer& l, const at::Tensor& rows, int64_t n, at::IntArrayRef hw) {
  at::Tensor cols = rows.view({n, -1, rows.size(1)}).transpose(1, 2);  // [N, K, L]
  return at::col2im(cols.contiguous(), hw, {l.weight.size(2), l.weight.size(3)}, l.dilation, l.padding, l.stride);
}

bool transposed(const Layer& l) { return l.kind == Layer::Kind::ConvTranspose2d; }

// A ConvTranspose2d from 1x1 pixels without padding: out[n, :, i, j] = sum_c x[n, c] W[c, :, i, j], one product.
bool fromOnePixel(const Layer& l, const at::Tensor& x) {
  return transposed(l) && x.size(2) == 1 && x.size(3) == 1 && l.padding == std::vector<int64_t>{0, 0} &&
         l.outputPadding == std::vector<int64_t>{0, 0} && l.dilation == std::vector<int64_t>{1, 1};
}

// W [Ci, Co, kh, kw] as [Ci, kh * kw * Co]: the product's right side for channels-last output.
at::Tensor pixelMajorWeight(const Layer& l) { return l.weight.permute({0, 2, 3, 1}).reshape({l.weight.size(0), -1}); }
}  // namespace

bool convAsProducts(const Layer& l, const at::Tensor& x) {
  if (!x.is_cpu() || l.groups != 1 || l.spectralNorm) return false;
  if (fromOnePixel(l, x)) return true;
  // The thin side: a Conv2d's input channels, a ConvTranspose2d's output channels, times the kernel's pixels.
  // (weight.size(1) is both: [Co, Ci, kh, kw] for Conv2d, [Ci, Co, kh, kw] for ConvTranspose2d)
  return l.weight.size(1) * l.weight.size(2) * l.weight.size(3) <= kThinColumns;
}

at::Tensor convProductsForward(const Layer& l, const at::Tensor& x) {
  const int64_t n = x.size(0);
  if (fromOnePixel(l, x)) {
    at::Tensor out = at::mm(x.reshape({n, -1}), pixelMajorWeight(l));  // [N, kh * kw * Co]
    at::Tensor y = out.view({n, l.weight.size(2), l.weight.size(3), l.weight.size(1)}).permute({0, 3, 1, 2});
    return l.bias.defined() ? y.add_(l.bias.view({1, -1, 1, 1})) : y;
  }
  at::Tensor y;
  if (!transposed(l)) {
    // Conv2d: im2col rows [N * L, Ci * kh * kw] times W^T [K, Co] gives the output's pixel rows.
    at::Tensor w = l.weight.reshape({l.weight.size(0), -1});
    at::Tensor cols = colRows(l, x);
    const int64_t ho = (x.size(2) + 2 * l.padding[0] - l.dilation[0] * (l.weight.size(2) - 1) - 1) / l.stride[0] + 1;
    const int64_t wo = (x.size(3) + 2 * l.padding[1] - l.dilation[1] * (l.weight.size(3) - 1) - 1) / l.stride[1] + 1;
    at::Tensor rows = l.bias.defined() ? at::addmm(l.bias, cols, w.t()) : at::mm(cols, w.t());
    return fromPixelRows(rows, n, ho, wo);
  }
  // ConvTranspose2d: the input's pixel rows times W [Ci, Co * kh * kw], scattered back by col2im.
  std::vector<int64_t> hw(2);
  for (int i = 0; i < 2; ++i)
    hw[i] = (x.size(2 + i) - 1) * l.stride[i] - 2 * l.padding[i] + l.dilation[i] * (l.weight.size(2 + i) - 1) + l.outputPadding[i] + 1;
  y = fromColRows(l, at::mm(pixelRows(x), l.weight.reshape({l.weight.size(0), -1})), n, hw);
  if (l.bias.defined()) y.add_(l.bias.view({1, -1, 1, 1}));
  return y;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> convProductsBackward(const Layer& l, const at::Tensor& dY, const at::Tensor& x,
                                                                    std::array<bool, 3> mask) {
  const int64_t n = x.size(0);
  at::Tensor gi, gw, gb;
  if (mask[2]) gb = dY.sum({0, 2, 3});
  if (fromOnePixel(l, x)) {
    at::Tensor g = dY.permute({0, 2, 3, 1}).reshape({n, -1});  // [N, kh * kw * Co]
    if (mask[0]) gi = at::mm(g, pixelMajorWeight(l).t()).view(x.sizes());
    if (mask[1]) {
      at::Tensor w = at::mm(x.reshape({n, -1}).t(), g);  // [Ci, kh * kw * Co]
      gw = w.view({l.weight.size(0), l.weight.size(2), l.weight.size(3), l.weight.size(1)}).permute({0, 3, 1, 2});
    }
    return {gi, gw, gb};
  }
  if (!transposed(l)) {
    at::Tensor w = l.weight.reshape({l.weight.size(0), -1});  // [Co, K]
    at::Tensor g = pixelRows(dY);                              // [N * L, Co]
    if (mask[0]) gi = fromColRows(l, at::mm(g, w), n, {x.size(2), x.size(3)});
    if (mask[1]) gw = at::mm(g.t(), colRows(l, x)).view(l.weight.sizes());
    return {gi, gw, gb};
  }
  // ConvTranspose2d: its input's gradient is a Conv2d of dY (im2col rows times W^T), its weight's the
  // input's pixel rows against dY's im2col rows.
  at::Tensor w = l.weight.reshape({l.weight.size(0), -1});  // [Ci, K]
  at::Tensor cols = colRows(l, dY);                           // [N * L, K]
  if (mask[0]) gi = fromPixelRows(at::mm(cols, w.t()), n, x.size(2), x.size(3));
  if (mask[1]) gw = at::mm(pixelRows(x).t(), cols).view(l.weight.sizes());
  return {gi, gw, gb};
}

}  // namespace ltg
