// What both paths of the fused GAN step share (the autograd path in gan_step.cc, the fast path in
// fast_path.cc): the spec, the models and their optimizers, the checks of a step's inputs, its draws,
// losses and updates, with the non-finite guard and, data-parallel, the averaging across ranks
// (gan_step_dist.cc). GanStep (gan_step.h) adds the paths, the CUDA graph and the epoch loop; the fast path
// gets a GanCore, so it depends on this header and not on GanStep. Plain C++ over LibTorch.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "autocast.h"
#include "diff_augment.h"
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
  // ema: the EMA generator's layers (same structure as g) when spec.ema is on, else empty.
  GanCore(Sequential g, Sequential d, std::shared_ptr<Optimizer> optG, std::shared_ptr<Optimizer> optD, GanSpec spec, Sequential ema = {});

  at::Tensor noise(int64_t n) const;
  // n labels drawn uniformly from [0, classes) (int64, on the models' device).
  at::Tensor drawLabels(int64_t n) const;
  // G's output for noise z (and labels y when conditional), as the step computes it; ema: the EMA
  // generator's instead (spec.ema).
  at::Tensor generate(const at::Tensor& z, const at::Tensor& y, bool ema = false) const;
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
  // A label-based loss (BCE, BCE with logits, least squares) of D's output against `label`.
  at::Tensor loss(const at::Tensor& out, double label) const;
  // spec.loss's terms: D's on its output for real (real true) or fake images, and G's on D's output for
  // its fakes; and the mean probability D gives "real" (for losses without probabilities: D's mean output).
  at::Tensor dLossTerm(const at::Tensor& out, bool real) const;
  at::Tensor gLossTerm(const at::Tensor& out) const;
  at::Tensor meanProb(const at::Tensor& out) const;
  // The DiffAugment policy applied to a batch before D (x itself without one).
  at::Tensor augment(const at::Tensor& x) const;
  // Whether the update at batch index i runs the penalty / G's update (lazy penalty, dSteps).
  bool penaltyDue(int64_t i) const { return spec.penalty.kind != PenaltySpec::Kind::None && i % spec.penalty.every == 0; }
  bool gDue(int64_t i) const { return i % spec.dSteps == 0; }
  // The weighted penalty term added to D's loss (already times `every`): WGAN-GP on interpolates of
  // realIn and fake (real labels y), R1 from D's output realOut on realIn (which requires grad).
  at::Tensor penalty(const at::Tensor& realIn, const at::Tensor& realOut, const at::Tensor& fake, const at::Tensor& y) const;
  // After a G update: the EMA generator follows G (spec.ema).
  void updateEma();
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
  Sequential E;  // the EMA of G (spec.ema), updated in place after each G update; empty without one
  std::shared_ptr<Optimizer> optG, optD;
  int64_t emaUpdates = 0;  // G updates the EMA has followed (its `start` counts them); a checkpoint keeps it
  // The batch index of the next D update: which updates are due (gDue, penaltyDue). trainEpoch sets it
  // to the batch's index in the epoch; each D update counts on from there.
  int64_t batchIndex = 0;
  GanSpec spec;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  // Sync-free mode (default on CUDA): optimizers update through stepCapturable and a non-finite loss
  // skips updates on the device instead of a per-step host check. CUDA graphs need it.
  bool capturable = false;
  // The fast path (fast_path.h): 1 on (CPU and CUDA), 0 off, -1 (default) on the CPU only, until it has been
  // verified on a GPU.
  int fastPath = -1;
  // Mixed precision: the forward passes and losses of both updates under autocast to bf16 or fp16 (the
  // backward passes, penalties' gradients and updates outside it, on fp32 weights); fp32 by default.
  // fp16 adds torch.amp.GradScaler's dynamic loss scaling (below). Set with setPrecision.
  Precision precision = Precision::Fp32;
  void setPrecision(Precision p);
  // fp16's loss scale (GradScaler's: 2^16 at first, halved after a step whose gradients overflowed, whose
  // updates were then skipped, and doubled after kScaleGrowthInterval steps without); undefined otherwise.
  at::Tensor gradScale() const { return gradScale_; }
  // Moves fp16's scale after a step's updates (GradScaler.update); nothing otherwise.
  void updateScale();
  // Data-parallel training over this group's ranks when set (as DDP): parameters, buffers and optimizer
  // state come from rank 0 before the first step; every gradient and the step's losses are averaged
  // across ranks before each update; trainEpoch trains on this rank's shard. CUDA graphs are off.
  std::shared_ptr<DistGroup> group;

 protected:
  void checkFinite(const at::Tensor& loss, const char* which) const;
  void checkRecipes();  // the constructor's checks of the recipes' fields against the models
  void judgeFinite(const at::Tensor& loss, const char* which);
  at::Tensor fake_, fakeLabels_;  // D's fake batch and its labels, kept for G when gNoise is 'reuse'
  std::vector<DiffAugmentPolicy> augment_;  // spec.augment parsed
  int64_t stepCount_ = 0;
  bool labelsChecked_ = false;  // set while labels given to a step were range-checked already (one read back per epoch)
  at::Tensor bad_;              // capturable mode: 1 once a loss was non-finite; updates are skipped while set

  // fp16's dynamic loss scaling, one scaler for both updates (PyTorch's recipe for several optimizers:
  // each update unscales its gradients and is skipped on an overflow; the scale moves once per step).
  at::Tensor scaled(const at::Tensor& loss) const { return gradScale_.defined() ? loss * gradScale_ : loss; }
  static constexpr int64_t kScaleGrowthInterval = 2000;
  at::Tensor gradScale_, growthTracker_, stepFoundInf_;

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
