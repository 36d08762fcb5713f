#include "gan_step.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <string>
#include <vector>

namespace ltg {

namespace {
// Turns requires_grad off for some parameters for a scope, restoring it after (even on error).
class FreezeGuard {
 public:
  explicit FreezeGuard(std::vector<at::Tensor> params) : params_(std::move(params)) {
    for (auto& p : params_) {
      was_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FreezeGuard() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(was_[i]);
  }

 private:
  std::vector<at::Tensor> params_;
  std::vector<bool> was_;
};

// Marks labels as range-checked for a scope (restored on exit, also on error).
class LabelsChecked {
 public:
  explicit LabelsChecked(bool& flag) : flag_(flag), was_(flag) { flag_ = true; }
  ~LabelsChecked() { flag_ = was_; }

 private:
  bool& flag_;
  bool was_;
};
}  // namespace

StepValues GanStep::finishStep(const StepTensors& r, bool counted) {
  const at::Tensor* parts[4] = {&r.dLoss, &r.gLoss, &r.dReal, &r.dFake};
  double v[5] = {0, 0, 0, 0, 0};
  if (device.is_cpu() && !capturable) {
    for (int i = 0; i < 4; ++i)
      if (parts[i]->defined()) v[i] = parts[i]->item<double>();
  } else {
    // One device-to-host copy instead of one sync per value.
    std::vector<at::Tensor> all;
    for (auto* t : parts)
      all.push_back(t->defined() ? t->detach().reshape({1}).to(at::kDouble) : at::zeros({1}, bad_.options().dtype(at::kDouble)));
    all.push_back(bad_.reshape({1}).to(at::kDouble));
    at::Tensor host = at::cat(all).to(at::kCPU);
    auto a = host.accessor<double, 1>();
    for (int i = 0; i < 5; ++i) v[i] = a[i];
  }
  StepValues out;
  std::optional<double>* fields[4] = {&out.dLoss, &out.gLoss, &out.dReal, &out.dFake};
  for (int i = 0; i < 4; ++i)
    if (parts[i]->defined()) *fields[i] = v[i];
  if (capturable && v[4] != 0) {
    bad_.zero_();
    int64_t k = counted ? stepCount_-- : stepCount_ + 1;
    std::string losses = (out.dLoss ? "D " + c10::str(*out.dLoss) : "") + (out.dLoss && out.gLoss ? ", " : "") +
                         (out.gLoss ? "G " + c10::str(*out.gLoss) : "");
    TORCH_CHECK(false, "non-finite loss (", losses, ") at step ", k, "; its update was skipped, weights are those of the last good step");
  }
  return out;
}

StepTensors GanStep::stepD(const at::Tensor& real, const at::Tensor& yIn, const at::Tensor& zIn, const at::Tensor& yFakeIn) {
  checkBatch(real);
  if (group && !synced_) syncStart();
  int64_t n = real.size(0);
  at::Tensor y = checkLabels(yIn, n, "labels");
  at::Tensor z = zIn.defined() ? zIn : noise(n);
  checkNoise(z, n);
  at::Tensor yFake;
  const bool reuse = spec.gNoise == GanSpec::GNoise::Reuse;
  if (spec.conditioning.classes) yFake = yFakeIn.defined() ? checkLabels(yFakeIn, n, "fake labels") : drawLabels(n);
  else checkLabels(yFakeIn, n, "fake labels");
  optD->zeroGrad();
  // Forward passes and losses under autocast (mixed precision); backward passes paused out of it, and
  // the scope ends before the update.
  std::optional<AutocastScope> mixed = autocastFor(precision, device);
  at::Tensor fake;
  if (spec.detachFakeForD && !reuse) {
    // Its graph would be discarded by the detach anyway: skip building it (same values, less work).
    at::NoGradGuard ng;
    fake = G.forward(gInput(z, yFake));
  } else {
    fake = G.forward(gInput(z, yFake));
  }
  // The recipes' order (test/parity/README.md): augment reals, D on them, augment fakes, D on them, then
  // the penalty (its draws and D pass), added to the loss whose backward runs last.
  const bool pen = penaltyDue(batchIndex);
  const bool r1 = pen && spec.penalty.kind == PenaltySpec::Kind::R1;
  at::Tensor realIn = r1 ? real.detach().requires_grad_(true) : real;  // R1 differentiates D's output on reals
  at::Tensor dRealOut = D.forward(dInput(augment(realIn), y));
  at::Tensor lossReal = dLossTerm(dRealOut, true);
  at::Tensor fakeIn = dInput(augment(spec.detachFakeForD ? fake.detach() : fake), yFake);
  StepTensors r;
  if (spec.separateDBackward) {
    guardFinite(lossReal, "discriminator (real)");
    {
      auto paused = autocastPaused(device);
      scaled(lossReal).backward({}, r1);  // R1 reads this graph again
    }
    at::Tensor dFakeOut = D.forward(fakeIn);
    at::Tensor lossFake = dLossTerm(dFakeOut, false);
    if (pen) lossFake = lossFake + penalty(realIn, dRealOut, fake, y);
    guardFinite(lossFake, "discriminator (fake)");
    {
      auto paused = autocastPaused(device);
      scaled(lossFake).backward({}, reuse && !spec.detachFakeForD);
    }
    r.dLoss = (lossReal + lossFake).detach();
    r.dFake = meanProb(dFakeOut);
  } else {
    at::Tensor dFakeOut = D.forward(fakeIn);
    at::Tensor lossFake = dLossTerm(dFakeOut, false);
    at::Tensor dLoss = spec.dLossReduction == GanSpec::Reduction::Mean ? (lossReal + lossFake) / 2 : lossReal + lossFake;
    if (pen) dLoss = dLoss + penalty(realIn, dRealOut, fake, y);
    guardFinite(dLoss, "discriminator");
    // A non-detached fake that G reuses needs G's graph kept for G's backward (seed 003).
    {
      auto paused = autocastPaused(device);
      scaled(dLoss).backward({}, reuse && !spec.detachFakeForD);
    }
    r.dLoss = dLoss.detach();
    r.dFake = meanProb(dFakeOut);
  }
  r.dReal = meanProb(dRealOut);
  mixed.reset();
  update(*optD, {&r.dLoss, &r.dReal, &r.dFake}, "discriminator");
  ++batchIndex;
  fake_ = reuse ? fake : at::Tensor();
  fakeLabels_ = reuse ? yFake : at::Tensor();
  return r;
}

StepTensors GanStep::stepG(int64_t n, const at::Tensor& zIn, const at::Tensor& yIn) {
  std::optional<AutocastScope> mixed = autocastFor(precision, device);  // as in stepD
  at::Tensor fake, y;
  if (spec.gNoise == GanSpec::GNoise::Reuse && fake_.defined()) {
    fake = fake_;
    y = fakeLabels_;
  } else {
    if (group && !synced_) syncStart();
    TORCH_CHECK(n > 0, "generator step: batch size must be at least 1, got ", n);
    at::Tensor z = zIn.defined() ? zIn : noise(n);
    checkNoise(z, n);
    if (spec.conditioning.classes) y = yIn.defined() ? checkLabels(yIn, n, "fake labels") : drawLabels(n);
    else checkLabels(yIn, n, "fake labels");
    fake = G.forward(gInput(z, y));
  }
  forgetFake();
  optG->zeroGrad();
  // G's update needs gradients through D, not D's own weight gradients (a script computes those and
  // throws them away at D's next zero_grad). Freezing D skips that work; losses and weights are equal.
  FreezeGuard freezeD(D.parameters());
  at::Tensor out = D.forward(dInput(augment(fake), y));
  at::Tensor gLoss = gLossTerm(out);
  guardFinite(gLoss, "generator");
  {
    auto paused = autocastPaused(device);
    scaled(gLoss).backward();
  }
  StepTensors r;
  r.gLoss = gLoss.detach();
  r.dFake = meanProb(out);
  mixed.reset();
  update(*optG, {&r.gLoss, &r.dFake}, "generator");
  updateEma();
  lastGLoss_ = r.gLoss;
  return r;
}

StepTensors GanStep::step(const at::Tensor& real, const at::Tensor& y, const at::Tensor& zD, const at::Tensor& yD, const at::Tensor& zG,
                          const at::Tensor& yG) {
  if (fastPath != 0 && FastPath::unsupported(*this).empty()) {
    if (group && !synced_) syncStart();
    StepTensors r = ensureFastPath()->step(real, y, zD, yD, zG, yG);
    ++batchIndex;
    ++stepCount_;
    return r;
  }
  const bool g = gDue(batchIndex);  // before stepD, which counts the batch
  StepTensors d = stepD(real, y, zD, yD);
  at::Tensor gLoss;
  if (g) {
    gLoss = stepG(real.size(0), zG, yG).gLoss;
  } else {
    // D-only step (dSteps > 1): G's loss as of its last update, as a script's log line shows it (0 before
    // this process's first G update: a run resumed mid-cycle).
    forgetFake();
    gLoss = lastGLoss_.defined() ? lastGLoss_ : at::zeros({}, d.dLoss.options());
  }
  updateScale();
  ++stepCount_;
  return {d.dLoss, gLoss, d.dReal, d.dFake};
}

std::optional<double> GanStep::lastGLoss() const {
  if (!lastGLoss_.defined()) return std::nullopt;
  return lastGLoss_.item<double>();
}

void GanStep::setLastGLoss(double v) { lastGLoss_ = at::scalar_tensor(v, at::TensorOptions().dtype(dtype).device(device)); }

FastPath* GanStep::ensureFastPath() {
  if (!fast_) fast_ = std::make_unique<FastPath>(*this);
  return fast_.get();
}

std::string GanStep::path() const {
  if (fastPath == 0) return "autograd: the fast path is off (fastPath: false)";
  std::string why = FastPath::unsupported(*this);
  return why.empty() ? "fast" : "autograd: " + why;
}

bool GanStep::graphUsable() const {
  return !group && cudaGraphs && capturable && device.is_cuda() && graphFailure_.empty() && cudaGraphsCompiled() && spec.plain() &&
         precision == Precision::Fp32;
}

bool GanStep::graphCurrent() const {
  // Not the learning rates: the captured updates read them from the optimizers' lr tensors (refreshLr).
  return optG->version == graphVerG_ && optD->version == graphVerD_ && G.training == graphTrainG_ && D.training == graphTrainD_;
}

std::string GanStep::graphStatus() const {
  if (!device.is_cuda()) return "off: not on a CUDA device";
  if (!cudaGraphs) return "off: disabled (cudaGraphs: false)";
  if (group) return "off: data-parallel (a process group is set)";
  if (!capturable) return "off: needs capturable: true";
  if (!spec.plain()) return "off: the step spec's recipes (loss, penalty, dSteps, ema, augment) run eager: not captured yet";
  if (precision != Precision::Fp32) return "off: precision " + precisionName(precision) + " runs eager: not captured yet";
  if (!cudaGraphsCompiled()) return "off: this build has no CUDA graph support (LibTorch's CUDA headers were not found at build time)";
  if (!graphFailure_.empty()) return "off: capture failed: " + graphFailure_;
  if (graph_) return "replaying (batch " + std::to_string(graphBatch_) + ")";
  return "warming up";
}

void GanStep::refreshLr() {
  optG->lrTensor(device);
  optD->lrTensor(device);
}

StepTensors GanStep::stepAuto(const at::Tensor& real, const at::Tensor& y) {
  SideStream side(device);
  return stepAutoOnStream(real, y);
}

StepTensors GanStep::stepAutoOnStream(const at::Tensor& real, const at::Tensor& yIn) {
  if (!graphUsable()) return step(real, yIn, {}, {}, {}, {});
  checkBatch(real);
  at::Tensor y = checkLabels(yIn, real.size(0), "labels");
  // Checked once here: a capture cannot read values back, and a replay should not.
  LabelsChecked checked(labelsChecked_);
  int64_t n = real.size(0);
  if (graph_ && !graphCurrent()) {
    graph_.reset();  // state the graph cannot see changed: capture again after a warm-up
    warm_ = 0;
  }
  if (graph_) {
    if (n != graphBatch_) return step(real, y, {}, {}, {}, {});  // an epoch's short last batch: eager, the graph kept
    refreshLr();
    graphReal_.copy_(real);
    if (y.defined()) graphLabels_.copy_(y);
    graph_->replay();
    ++stepCount_;
    return graphOut_;
  }
  if (n != warmBatch_) {
    warmBatch_ = n;
    warm_ = 0;
  }
  // Eager steps first on this stream: lazy state (optimizer moments, cuBLAS workspaces) must exist
  // before capture, as PyTorch's whole-network capture recipe does.
  if (warm_ < kWarmupSteps) {
    ++warm_;
    return step(real, y, {}, {}, {}, {});
  }
  graphReal_ = real.clone();
  graphLabels_ = y.defined() ? y.clone() : at::Tensor();
  refreshLr();  // not inside the capture: a fill there would be replayed with this lr forever
  auto graph = std::make_unique<StepGraph>();
  StepTensors out;
  std::string why;
  int64_t count = stepCount_;
  bool ok = graph->capture([&] { out = step(graphReal_, graphLabels_, {}, {}, {}, {}); }, why);
  stepCount_ = count;  // capture records the step without running it
  forgetFake();
  if (!ok) {
    graphFailure_ = why.empty() ? "unknown error" : why;
    graphReal_ = at::Tensor();
    graphLabels_ = at::Tensor();
    return step(real, y, {}, {}, {}, {});
  }
  graph_ = std::move(graph);
  graphOut_ = out;
  graphBatch_ = n;
  graphVerG_ = optG->version;
  graphVerD_ = optD->version;
  graphTrainG_ = G.training;
  graphTrainD_ = D.training;
  graph_->replay();
  ++stepCount_;
  return graphOut_;
}

EpochResult GanStep::trainEpoch(const at::Tensor& data, const at::Tensor& labelsIn, const EpochOptions& opt,
                                const std::function<void(const Progress&)>& onProgress, const std::atomic<bool>& stop) {
  int64_t n = data.size(0);
  TORCH_CHECK(opt.batchSize >= 1, "batchSize must be at least 1, got ", opt.batchSize);
  // Data-parallel: this rank's shard, as DistributedSampler's (drop_last=False): the epoch's order padded
  // to a multiple of the world size by repeating its start, then every world-th index from the rank's.
  const int world = group ? group->worldSize() : 1;
  const int64_t all = n;
  if (world > 1) {
    TORCH_CHECK(n >= world, "trainEpoch: ", n, " images cannot be shared among ", world, " ranks");
    n = (n + world - 1) / world;
  }
  const bool indexed = opt.shuffle || world > 1;
  TORCH_CHECK(opt.batchSize <= n, "batchSize ", opt.batchSize, " is larger than the dataset (", n, " images",
              world > 1 ? c10::str(": this rank's share of ", all, " among ", world, " ranks") : std::string(), ")");
  int64_t steps = opt.dropLast ? n / opt.batchSize : (n + opt.batchSize - 1) / opt.batchSize;
  TORCH_CHECK(opt.startStep >= 0 && opt.startStep < steps, "startStep must be in [0, ", steps, ") (the epoch has ", steps, " steps), got ",
              opt.startStep);
  // Checked once for the whole dataset (one read back), then sliced with the images.
  at::Tensor labels = checkLabels(labelsIn, all, "trainEpoch: labels");
  LabelsChecked checked(labelsChecked_);  // its slices need no read back per step
  bool conv = D.inputRank() == 4;
  at::Tensor perm;
  if (opt.shuffle) {
    // A seeded generator of its own: the global one stays reserved for noise and dropout.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
    perm = at::randperm(all, gen, at::TensorOptions().dtype(at::kLong));
  } else if (world > 1) {
    perm = at::arange(all, at::TensorOptions().dtype(at::kLong));
  }
  if (world > 1) {
    int64_t total = n * world;
    if (total > all) perm = at::cat({perm, perm.narrow(0, 0, total - all)});
    perm = perm.slice(0, group->rank(), total, world);
  }
  if (perm.defined()) perm = perm.to(data.device());
  if (group && !synced_) syncStart();
  stopAgreed_ = false;
  SideStream side(device);
  // Per-step [dLoss, gLoss, dReal, dFake] from startStep on, kept on the device: reports and the
  // epoch's means read it.
  const int64_t first = opt.startStep;
  at::Tensor losses = at::empty({steps - first, 4}, at::TensorOptions().dtype(at::kDouble).device(device));
  int64_t reported = first;
  EpochResult res;
  int64_t s = first;
  for (; s < steps; ++s) {
    // Data-parallel, the ranks stop together: at the boundary after the step where one of them voted to.
    if (group ? stopAgreed_ : stop.load()) {
      res.aborted = true;  // at a step boundary: weights, optimizer state and RNG are those after step s
      break;
    }
    stopVote_ = stop.load() ? 1 : 0;
    int64_t start = s * opt.batchSize, len = std::min(opt.batchSize, n - start);
    at::Tensor idx = indexed ? perm.narrow(0, start, len) : at::Tensor();
    at::Tensor batch = indexed ? data.index_select(0, idx) : data.narrow(0, start, len);
    at::Tensor y;
    if (labels.defined()) y = indexed ? labels.index_select(0, idx) : labels.narrow(0, start, len);
    if (batch.scalar_type() == at::kByte) {
      batch = batch.to(dtype).div_(255);
      if (opt.normalizeMinusOneOne) batch.sub_(0.5).div_(0.5);
    } else if (batch.scalar_type() != dtype) {
      batch = batch.to(dtype);
    }
    if (conv && batch.dim() == 3) batch = batch.unsqueeze(1);  // [N, H, W] grayscale: one channel
    else if (!conv && batch.dim() > 2) batch = batch.flatten(1);
    batchIndex = s;  // which updates are due (dSteps, a lazy penalty) follows the batch's index in the epoch
    StepTensors r = stepAutoOnStream(batch, y);
    losses.select(0, s - first).copy_(at::stack({r.dLoss, r.gLoss, r.dReal, r.dFake}));
    res.images += len;
    if (s + 1 - reported < opt.progressEvery && s + 1 < steps) continue;
    // A report: one small read back per progressEvery steps (the only sync of the loop on a device).
    at::Tensor window = losses.narrow(0, reported - first, s + 1 - reported);
    at::Tensor m = window.mean(0);
    if (capturable) m = at::cat({m, bad_.to(at::kDouble).reshape({1})});
    m = m.to(at::kCPU);
    auto a = m.accessor<double, 1>();
    if (capturable && a[4] != 0) {
      at::Tensor rows = window.to(at::kCPU);
      auto w = rows.accessor<double, 2>();
      int64_t bad = 0;
      while (bad + 1 < rows.size(0) && std::isfinite(w[bad][0]) && std::isfinite(w[bad][1])) ++bad;
      int64_t k = reported + bad + 1, skipped = s + 1 - k;
      bad_.zero_();
      stepCount_ -= skipped + 1;
      TORCH_CHECK(false, "non-finite loss (D ", w[bad][0], ", G ", w[bad][1], ") at step ", k, " of ", steps,
                  "; training stopped: that update and the ", skipped, " after it were skipped, so the weights are those of step ", k - 1);
    }
    TORCH_CHECK(std::isfinite(a[0]) && std::isfinite(a[1]), "non-finite loss (D ", a[0], ", G ", a[1], ") by step ", s + 1);
    if (onProgress) onProgress({s + 1, steps, a[0], a[1], a[2], a[3]});
    reported = s + 1;
  }
  res.steps = s - first;
  res.totalSteps = steps;
  at::Tensor done = losses.narrow(0, 0, res.steps);
  if (res.steps > 0) {
    at::Tensor m = done.mean(0).to(at::kCPU);
    auto a = m.accessor<double, 1>();
    res.dLoss = a[0];
    res.gLoss = a[1];
    res.dReal = a[2];
    res.dFake = a[3];
  }
  if (opt.recordSteps) res.perStep = done.to(at::kFloat).to(at::kCPU);
  return res;
}

}  // namespace ltg
