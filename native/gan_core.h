// What both paths of the fused GAN step share (the autograd path in gan_step.cc, the MLP fast path in
// mlp_path.cc): the spec, the models and their optimizers, the checks of a step's inputs, its draws,
// losses and updates, with the non-finite guard and, data-parallel, the averaging across ranks
// (gan_step_dist.cc). GanStep (gan_step.h) adds the paths, the CUDA graph and the epoch loop; the MLP path
// gets a GanCore, so it depends on this header and not on GanStep. Plain C++ over LibTorch.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "dist.h"
#include "gan_spec.h"
#include "optim.h"
#include "sequential.h"

namespace ltg {

// Losses and mean D outputs of one step, as 0-dim tensors on the training device (no sync).
struct StepTensors {
  at::Tensor dLoss, gLoss, dReal, dFake;
};

class GanCore {
 public:
  GanCore(Sequential g, Sequential d, std::shared_ptr<Optimizer> optG, std::shared_ptr<Optimizer> optD, GanSpec spec);

  at::Tensor noise(int64_t n) const;
  // n labels drawn uniformly from [0, classes) (int64, on the models' device).
  at::Tensor drawLabels(int64_t n) const;
  // G's output for noise z (and labels y when conditional), as the step computes it.
  at::Tensor generate(const at::Tensor& z, const at::Tensor& y) const;
  // Throws (c10::Error) when the batch's shape, dtype or device does not fit the models.
  void checkBatch(const at::Tensor& real) const;
  // Labels of n real images as int64 on the models' device; throws unless they are n integers in
  // [0, classes) (TypeError for another dtype, IndexError for a label outside it), and when given to an
  // unconditional GAN or missing for a conditional one.
  at::Tensor checkLabels(const at::Tensor& y, int64_t n, const char* what) const;
  // Throws unless z is noise for n samples (n < 0: any number) in the models' dtype and device.
  void checkNoise(const at::Tensor& z, int64_t n) const;
  // G's input for noise z and D's for images x: with the labels' one-hot vectors when conditional.
  at::Tensor gInput(const at::Tensor& z, const at::Tensor& y) const;
  at::Tensor dInput(const at::Tensor& x, const at::Tensor& y) const;
  // D's loss on its output against `label` (spec.loss), and its mean probability of "real".
  at::Tensor loss(const at::Tensor& out, double label) const;
  at::Tensor meanProb(const at::Tensor& out) const;
  // Stops the step before its update when `loss` is not finite (capturable: skips the update on the
  // device). Data-parallel, guardFinite defers that judgement to the averaged loss (averageGrads).
  void guardFinite(const at::Tensor& loss, const char* which);
  // opt's update; data-parallel, its gradients and the step's scalars (the first: the loss named
  // lossName) averaged across ranks first.
  void update(Optimizer& opt, std::vector<at::Tensor*> scalars, const char* lossName);
  // Drops the fake batch stepD keeps for G's update (gNoise 'reuse'): a whole step made it stale.
  void forgetFake();
  // Every tensor an epoch reads or writes besides its dataset: both models' parameters and buffers, the
  // optimizers' parameters and state, and the gradients they have now (what epoch_lock.h locks).
  std::vector<at::Tensor> ownedTensors() const;

  Sequential G, D;
  std::shared_ptr<Optimizer> optG, optD;
  GanSpec spec;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  // Sync-free mode (default on CUDA): optimizers update through stepCapturable and a non-finite loss
  // skips updates on the device instead of a per-step host check. CUDA graphs need it.
  bool capturable = false;
  // The MLP fast path: 1 on (CPU and CUDA), 0 off, -1 (default) on the CPU only, until it has been
  // verified on a GPU.
  int fastPath = -1;
  // Data-parallel training over this group's ranks when set (as DDP): parameters, buffers and optimizer
  // state come from rank 0 before the first step; every gradient and the step's losses are averaged
  // across ranks before each update; trainEpoch trains on this rank's shard. CUDA graphs are off.
  std::shared_ptr<DistGroup> group;

 protected:
  void checkFinite(const at::Tensor& loss, const char* which) const;
  void judgeFinite(const at::Tensor& loss, const char* which);
  at::Tensor fake_, fakeLabels_;  // D's fake batch and its labels, kept for G when gNoise is 'reuse'
  int64_t stepCount_ = 0;
  bool labelsChecked_ = false;  // set while labels given to a step were range-checked already (one read back per epoch)
  at::Tensor bad_;              // capturable mode: 1 once a loss was non-finite; updates are skipped while set

  // Data-parallel (group set): rank 0's state broadcast once; the gradients of opt's parameters and
  // the step's scalars averaged across ranks in buckets (scalars replaced by their means). With them
  // goes this rank's stop vote: stopAgreed_ is set when any rank voted to stop (trainEpoch's boundary).
  // Non-finite losses are judged on the averages, so every rank stops at the same update.
  void syncStart();
  void averageGrads(Optimizer& opt, std::vector<at::Tensor*> scalars, const char* lossName);
  bool synced_ = false;
  double stopVote_ = 0;
  bool stopAgreed_ = false;
};

}  // namespace ltg
