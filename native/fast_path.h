// The fused step's fast path for MLP and DCGAN-style GANs: the whole step (checks, draws, D's update over
// the real and fake batches as one batch, G's update without D's weight gradients, the losses' gradients
// written out) over a FastNet (fast_net.h) per model, no autograd graph, so results match the autograd
// path to rounding. Dropout masks are drawn in the order of two separate passes. Plain C++ over LibTorch;
// GanStep::step calls it, handing it the GanCore (gan_core.h) whose checks, draws, losses and updates it
// shares with the autograd path.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "fast_net.h"
#include "gan_core.h"

namespace ltg {

class FastPath {
 public:
  // Why this step cannot take the fast path now (empty: it can); part is checked once, part every step.
  static std::string unsupported(const GanCore& s);
  explicit FastPath(GanCore& s);
  StepTensors step(const at::Tensor& real, const at::Tensor& y, const at::Tensor& zD, const at::Tensor& yD, const at::Tensor& zG,
                   const at::Tensor& yG);
  // Milliseconds spent per phase since the last reset, while profiling is on.
  bool profiling = false;
  enum Phase { DForward, DBackward, GForward, GBackward, Updates, Losses, Masks, kPhases };
  std::array<double, kPhases> phaseMs{};
  int64_t profiledSteps = 0;

 private:
  GanCore& s_;
  FastNet g_, d_;
  std::map<int64_t, at::Tensor> dIn_;  // per batch size n: D's batched input [2n, ...]
};

}  // namespace ltg
