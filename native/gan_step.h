// The fused GAN training step: a whole discriminator update and generator update in one native call,
// covering the variants of the seeds' scripts (see ts/train/step-spec.ts), and the epoch loop over a
// device-resident dataset. Plain C++ over LibTorch; the N-API side is gan_step_wrap.cc.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "dist.h"
#include "mlp_path.h"
#include "optim.h"
#include "sequential.h"
#include "step_graph.h"

namespace ltg {

struct GanSpec {
  bool logits = true;        // BCEWithLogits on D's logits, else BCE on D's probabilities
  double realLabel = 1, fakeLabel = 0;
  bool dLossMean = false;    // (real + fake) / 2 instead of real + fake
  bool detachFakeForD = true;
  bool reuseFakeForG = false;
  bool separateDBackward = false;
  bool normalNoise = true;   // randn, else rand * (high - low) + low
  int64_t zDim = 100;
  std::vector<int64_t> zShape;  // one sample's noise shape ([zDim], or [zDim, 1, 1] for a convolutional G); empty: [zDim]
  double low = -1, high = 1;
  // Class-conditional (classes > 0): the label's one-hot vector is concatenated to G's noise and to
  // D's input along dimension 1 (spread over H x W for images); G's labels are drawn uniformly.
  int64_t classes = 0;
};

// Losses and mean D outputs of one step, as 0-dim tensors on the training device (no sync).
struct StepTensors {
  at::Tensor dLoss, gLoss, dReal, dFake;
};

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

class GanStep {
 public:
  GanStep(Sequential g, Sequential d, std::shared_ptr<Optimizer> optG, std::shared_ptr<Optimizer> optD, GanSpec spec);

  at::Tensor noise(int64_t n) const;
  // n labels drawn uniformly from [0, classes) (int64, on the models' device).
  at::Tensor drawLabels(int64_t n) const;
  // G's output for noise z (and labels y when conditional), as the step computes it.
  at::Tensor generate(const at::Tensor& z, const at::Tensor& y) const;
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
  // Which path step() takes now: "mlp" (MlpPath, the explicit MLP forward and backward) or
  // "autograd: <why not mlp>".
  std::string path() const;
  // The MLP path's time per phase while profiling (see MlpPath); null before its first step.
  MlpPath* mlpPath() { return mlp_.get(); }
  MlpPath* ensureMlpPath();

  // Throws (c10::Error) when the batch's shape, dtype or device does not fit the models.
  void checkBatch(const at::Tensor& real) const;
  // Labels of n real images as int64 on the models' device; throws unless they are n integers in
  // [0, classes) (and when given to an unconditional GAN, or missing for a conditional one).
  at::Tensor checkLabels(const at::Tensor& y, int64_t n, const char* what) const;
  // Every tensor an epoch reads or writes besides its dataset: both models' parameters and buffers, the
  // optimizers' parameters and state, and the gradients they have now (what epoch_lock.h locks).
  std::vector<at::Tensor> ownedTensors() const;
  // labels: one per image of data (conditional GANs), else undefined.
  EpochResult trainEpoch(const at::Tensor& data, const at::Tensor& labels, const EpochOptions& opt,
                         const std::function<void(const Progress&)>& onProgress, const std::atomic<bool>& stop);

  Sequential G, D;
  std::shared_ptr<Optimizer> optG, optD;
  GanSpec spec;
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  std::atomic<bool> busy{false};
  // Sync-free mode (default on CUDA): optimizers update through stepCapturable and a non-finite loss
  // skips updates on the device instead of a per-step host check. CUDA graphs need it.
  bool capturable = false;
  bool cudaGraphs = true;
  // The MLP fast path: 1 on (CPU and CUDA), 0 off, -1 (default) on the CPU only, until it has been
  // verified on a GPU.
  int fastPath = -1;
  // Data-parallel training over this group's ranks when set (as DDP): parameters, buffers and optimizer
  // state come from rank 0 before the first step; every gradient and the step's losses are averaged
  // across ranks before each update; trainEpoch trains on this rank's shard. CUDA graphs are off.
  std::shared_ptr<DistGroup> group;

 private:
  friend class MlpPath;
  at::Tensor loss(const at::Tensor& out, double label) const;
  at::Tensor meanProb(const at::Tensor& out) const;
  void checkNoise(const at::Tensor& z, int64_t n) const;
  at::Tensor gInput(const at::Tensor& z, const at::Tensor& y) const;
  at::Tensor dInput(const at::Tensor& x, const at::Tensor& y) const;
  void checkFinite(const at::Tensor& loss, const char* which) const;
  // Stops the step before its update when `loss` is not finite (capturable: skips the update on the
  // device). Data-parallel, guardFinite defers that judgement to the averaged loss (averageGrads).
  void guardFinite(const at::Tensor& loss, const char* which);
  void judgeFinite(const at::Tensor& loss, const char* which);
  // opt's update; data-parallel, its gradients and the step's scalars (the first: the loss named
  // lossName) averaged across ranks first.
  void update(Optimizer& opt, std::vector<at::Tensor*> scalars, const char* lossName);
  StepTensors stepAutoOnStream(const at::Tensor& real, const at::Tensor& y);
  bool graphUsable() const;
  bool graphCurrent() const;
  void refreshLr();  // the optimizers' lr tensors filled with their lr where it changed
  at::Tensor fake_, fakeLabels_;  // D's fake batch and its labels, kept for G when reuseFakeForG
  int64_t stepCount_ = 0;
  bool labelsChecked_ = false;  // set while labels given to a step were range-checked already (one read back per epoch)
  at::Tensor bad_;   // capturable mode: 1 once a loss was non-finite; updates are skipped while set

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
  std::unique_ptr<MlpPath> mlp_;

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
