// The fused GAN training step: a whole discriminator update and generator update in one native call,
// covering the variants of the seeds' scripts (gan_spec.h, ts/gan/step-spec.ts), and the epoch loop over
// a device-resident dataset. What its paths share is GanCore (gan_core.h); the fast path is
// fast_path.h. Plain C++ over LibTorch; the N-API side is gan_step_wrap.cc (the epoch's JS side,
// epoch_job.cc).
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "fast_path.h"
#include "gan_core.h"
#include "step_graph.h"

namespace ltg {

// A step's results on the host; a part the step does not produce (stepD has no gLoss) is empty.
struct StepValues {
  std::optional<double> dLoss, gLoss, dReal, dFake;
};

struct EpochOptions {
  int64_t batchSize = 64;
  bool shuffle = true;
  bool dropLast = false;
  uint64_t seed = 0;
  bool normalizeMinusOneOne = true;  // uint8 data: x/255 then (x - 0.5) / 0.5, as ToTensor+Normalize
  int64_t progressEvery = 50;
  bool recordSteps = false;
  int64_t startStep = 0;  // resume an epoch: skip its first startStep batches (same seeded order)
};

struct EpochResult {
  int64_t steps = 0, images = 0;  // run by this call (from startStep)
  int64_t totalSteps = 0;         // of the whole epoch
  bool aborted = false;           // stopped at a step boundary by the stop flag
  double dLoss = 0, gLoss = 0, dReal = 0, dFake = 0;  // means over the epoch's steps
  at::Tensor perStep;                                  // [steps, 4] float32 on CPU when recorded (also when aborted)
};

struct Progress {
  int64_t step, totalSteps;
  double dLoss, gLoss, dReal, dFake;  // means over the steps since the last report
};

class GanStep : public GanCore {
 public:
  using GanCore::GanCore;

  // The D update on real images with their labels y (conditional only); z and yFake are D's noise and
  // fake labels (drawn when undefined, noise first). Keeps the fake batch when G reuses it.
  StepTensors stepD(const at::Tensor& real, const at::Tensor& y, const at::Tensor& z, const at::Tensor& yFake);
  // The G update on n samples; z and yFake are G's noise and labels (drawn when undefined and not reusing D's fake).
  StepTensors stepG(int64_t n, const at::Tensor& z, const at::Tensor& yFake);
  StepTensors step(const at::Tensor& real, const at::Tensor& y, const at::Tensor& zD, const at::Tensor& yD, const at::Tensor& zG,
                   const at::Tensor& yG);
  // step(real, y) with noise and fake labels drawn here; on CUDA, once warm, through a captured CUDA
  // graph (graphStatus()). The returned tensors are the graph's static outputs: read them before the next step.
  StepTensors stepAuto(const at::Tensor& real, const at::Tensor& y);
  // Reads a step's results back (on a device, in one copy with the skip flag) and, in capturable mode,
  // throws when its update was skipped for a non-finite loss, naming the step; counted: a full step.
  StepValues finishStep(const StepTensors& r, bool counted);
  std::string graphStatus() const;
  // Which path step() takes now: "fast" (FastPath, the explicit forward and backward) or
  // "autograd: <why not mlp>".
  std::string path() const;
  // The fast path's time per phase while profiling (see FastPath); null before its first step.
  FastPath* fast() { return fast_.get(); }
  FastPath* ensureFastPath();

  // labels: one per image of data (conditional GANs), else undefined.
  EpochResult trainEpoch(const at::Tensor& data, const at::Tensor& labels, const EpochOptions& opt,
                         const std::function<void(const Progress&)>& onProgress, const std::atomic<bool>& stop);

  // The G loss a D-only step reports (dSteps > 1): the last G update's; a run resumed inside an epoch
  // restores it from its log, so the steps before its next G update report what the uninterrupted run did.
  std::optional<double> lastGLoss() const;
  void setLastGLoss(double v);

  std::atomic<bool> busy{false};
  bool cudaGraphs = true;

 private:
  StepTensors stepAutoOnStream(const at::Tensor& real, const at::Tensor& y);
  bool graphUsable() const;
  bool graphCurrent() const;
  void refreshLr();  // the optimizers' lr tensors filled with their lr where it changed

  // CUDA graph of one step: captured after kWarmupSteps eager steps of one batch size, replayed
  // while the optimizers' state and train/eval modes are those it captured. Learning rates may change:
  // the captured updates read them from device tensors, refreshed before each replay.
  static constexpr int kWarmupSteps = 3;
  std::unique_ptr<StepGraph> graph_;
  at::Tensor graphReal_, graphLabels_;
  StepTensors graphOut_;
  int64_t graphBatch_ = -1, warmBatch_ = -1, warm_ = 0;
  uint64_t graphVerG_ = 0, graphVerD_ = 0;
  bool graphTrainG_ = true, graphTrainD_ = true;
  std::string graphFailure_;  // set when capture failed: steps stay eager
  std::unique_ptr<FastPath> fast_;
  at::Tensor lastGLoss_;  // the last G update's loss: what a D-only step (dSteps > 1) reports
};

}  // namespace ltg
