// Convolutions run as matrix products (im2col / col2im and one sgemm per direction) where oneDNN is slow on
// the CPU: the thin layers at either end of a DCGAN, whose im2col matrix has few columns (a Conv2d from one
// or two channels, a ConvTranspose2d to one or two) and the ConvTranspose2d that grows G's noise from 1x1.
// oneDNN runs these at 10-35 GFLOP/s here against 100-250 for the wide layers between them (bench/RESULTS.md);
// as products they are memory-bound and several times faster. Channels-last in and out, as the fast path
// (fast_path.h) computes. Plain C++ over LibTorch.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <tuple>

#include "sequential.h"

namespace ltg {

// Whether Conv2d or ConvTranspose2d layer l runs as products for input x (on the CPU, groups 1, and thin as
// above); the rule depends on shapes only, so a run and its resumption compute alike.
bool convAsProducts(const Layer& l, const at::Tensor& x);

// The layer's output for x (channels-last [N, C, H, W]), as at::conv2d / at::conv_transpose2d computes it.
at::Tensor convProductsForward(const Layer& l, const at::Tensor& x);

// The gradients of the input, weight and bias asked for by mask from the output's gradient dY, as
// at::convolution_backward computes them (undefined where not asked).
std::tuple<at::Tensor, at::Tensor, at::Tensor> convProductsBackward(const Layer& l, const at::Tensor& dY, const at::Tensor& x,
                                                                    std::array<bool, 3> mask);

}  // namespace ltg
