// Dropout masks exactly as at::dropout draws them on CPU (mask = bernoulli(1 - p) / (1 - p) from the
// global generator), faster. On non-Intel CPUs ATen's bernoulli_(p) draws element by element under the
// generator's lock (bernoulli_distribution<double> over random64(): ATen/native/cpu/DistributionTemplates.h),
// ~12 ns an element, a sixth of a vanilla MLP step. The same Mersenne-twister stream, generated a block
// at a time with a branch-free twist and compared as integers (vectorized where the CPU has AVX2), gives
// the same masks at ~1 ns an element. On Intel CPUs ATen draws through MKL instead; a self-check against
// ATen then fails and ATen's own call is used.
#pragma once
#include <ATen/ATen.h>

namespace ltg {

// Fills the contiguous tensor `mask` (float32 or any dtype ATen takes) with a dropout mask for p in
// (0, 1), advancing the global CPU generator exactly as `mask.bernoulli_(1 - p).div_(1 - p)` does.
void drawDropoutMask(at::Tensor& mask, double p);

// Whether drawDropoutMask takes the fast path for p here (checked once per p against ATen itself).
bool fastDropoutMask(double p);

}  // namespace ltg
