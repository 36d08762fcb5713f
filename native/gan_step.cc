#include "gan_step.h"

#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <cmath>

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
}  // namespace

GanStep::GanStep(Sequential g, Sequential d, std::shared_ptr<Optimizer> og, std::shared_ptr<Optimizer> od, GanSpec s)
    : G(std::move(g)), D(std::move(d)), optG(std::move(og)), optD(std::move(od)), spec(s) {
  auto gp = G.parameters();
  auto dp = D.parameters();
  TORCH_CHECK(!gp.empty() && !dp.empty(), "GanStep: generator and discriminator need parameters");
  device = gp[0].device();
  dtype = gp[0].scalar_type();
  for (const auto& p : dp)
    TORCH_CHECK(p.device() == device, "GanStep: generator is on ", device, " but a discriminator parameter is on ", p.device(),
                "; move both to one device");
  TORCH_CHECK(at::isFloatingType(dtype), "GanStep: the generator's parameters have dtype ", dtype, ", expected a floating dtype");
  G.check(device, dtype);
  D.check(device, dtype);
  TORCH_CHECK(G.inFeatures() == -1 || G.inFeatures() == spec.zDim, "GanStep: noise dimension ", spec.zDim,
              " does not match the generator's input width ", G.inFeatures());
  bad_ = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
}

std::vector<at::Tensor> GanStep::ownedTensors() const {
  std::vector<at::Tensor> out = G.tensors();
  for (const auto& t : D.tensors()) out.push_back(t);
  for (const Optimizer* o : {optG.get(), optD.get()}) {
    for (const auto& p : o->params()) out.push_back(p);
    for (const auto& t : o->stateTensors()) out.push_back(t);
  }
  size_t n = out.size();
  for (size_t i = 0; i < n; ++i)
    if (out[i].grad().defined()) out.push_back(out[i].grad());
  return out;
}

at::Tensor GanStep::noise(int64_t n) const {
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  if (spec.normalNoise) return at::randn({n, spec.zDim}, opts);
  return at::rand({n, spec.zDim}, opts) * (spec.high - spec.low) + spec.low;
}

at::Tensor GanStep::loss(const at::Tensor& out, double label) const {
  at::Tensor target = at::full_like(out, label);
  return spec.logits ? at::binary_cross_entropy_with_logits(out, target) : at::binary_cross_entropy(out, target);
}

at::Tensor GanStep::meanProb(const at::Tensor& out) const {
  at::NoGradGuard ng;
  return spec.logits ? at::sigmoid(out).mean() : out.mean();
}

void GanStep::checkBatch(const at::Tensor& real) const {
  int64_t width = D.inFeatures();
  TORCH_CHECK(real.dim() == 2 && (width < 0 || real.size(1) == width), "real batch: expected shape [batch, ", width, "], got ",
              real.sizes());
  TORCH_CHECK(real.size(0) > 0, "real batch: batch size must be at least 1, got 0");
  TORCH_CHECK(real.scalar_type() == dtype, "real batch: expected dtype ", dtype, " (the models' dtype), got ", real.scalar_type(),
              " (uint8 images go through trainEpoch, which normalizes them)");
  TORCH_CHECK(real.device() == device, "real batch: expected device ", device, " (the models' device), got ", real.device());
}

void GanStep::checkNoise(const at::Tensor& z) const {
  TORCH_CHECK(z.scalar_type() == dtype, "noise: expected dtype ", dtype, " (the models' dtype), got ", z.scalar_type());
  TORCH_CHECK(z.device() == device, "noise: expected device ", device, " (the models' device), got ", z.device());
}

// Keep the last good weights: a non-finite loss stops the step before its optimizer runs. On CPU the
// check is free; on CUDA it would force a sync per step, so there it runs at progress reports.
void GanStep::checkFinite(const at::Tensor& l, const char* which) const {
  if (device.is_cpu()) {
    double v = l.item<double>();
    TORCH_CHECK(std::isfinite(v), which, " loss is ", v, " at step ", stepCount_ + 1,
                "; training stopped before this update, weights are those of the last good step");
  }
}

void GanStep::guardFinite(const at::Tensor& l, const char* which) {
  if (!capturable) return checkFinite(l, which);
  at::NoGradGuard ng;
  bad_.copy_(at::maximum(bad_, at::isfinite(l.detach()).logical_not().to(bad_.scalar_type())));
}

void GanStep::update(Optimizer& opt) {
  if (capturable) opt.stepCapturable(bad_);
  else opt.step();
}

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

StepTensors GanStep::stepD(const at::Tensor& real, const at::Tensor& zIn) {
  checkBatch(real);
  int64_t n = real.size(0);
  at::Tensor z = zIn.defined() ? zIn : noise(n);
  TORCH_CHECK(z.dim() == 2 && z.size(0) == n && z.size(1) == spec.zDim, "noise: expected shape [", n, ", ", spec.zDim, "], got ",
              z.sizes());
  checkNoise(z);
  optD->zeroGrad();
  at::Tensor fake;
  if (spec.detachFakeForD && !spec.reuseFakeForG) {
    // Its graph would be discarded by the detach anyway: skip building it (same values, less work).
    at::NoGradGuard ng;
    fake = G.forward(z);
  } else {
    fake = G.forward(z);
  }
  at::Tensor dRealOut = D.forward(real);
  at::Tensor lossReal = loss(dRealOut, spec.realLabel);
  at::Tensor fakeIn = spec.detachFakeForD ? fake.detach() : fake;
  StepTensors r;
  if (spec.separateDBackward) {
    guardFinite(lossReal, "discriminator (real)");
    lossReal.backward();
    at::Tensor dFakeOut = D.forward(fakeIn);
    at::Tensor lossFake = loss(dFakeOut, spec.fakeLabel);
    guardFinite(lossFake, "discriminator (fake)");
    lossFake.backward({}, spec.reuseFakeForG && !spec.detachFakeForD);
    r.dLoss = (lossReal + lossFake).detach();
    r.dFake = meanProb(dFakeOut);
  } else {
    at::Tensor dFakeOut = D.forward(fakeIn);
    at::Tensor lossFake = loss(dFakeOut, spec.fakeLabel);
    at::Tensor dLoss = spec.dLossMean ? (lossReal + lossFake) / 2 : lossReal + lossFake;
    guardFinite(dLoss, "discriminator");
    // A non-detached fake that G reuses needs G's graph kept for G's backward (seed 003).
    dLoss.backward({}, spec.reuseFakeForG && !spec.detachFakeForD);
    r.dLoss = dLoss.detach();
    r.dFake = meanProb(dFakeOut);
  }
  r.dReal = meanProb(dRealOut);
  update(*optD);
  fake_ = spec.reuseFakeForG ? fake : at::Tensor();
  return r;
}

StepTensors GanStep::stepG(int64_t n, const at::Tensor& zIn) {
  at::Tensor fake;
  if (spec.reuseFakeForG && fake_.defined()) {
    fake = fake_;
  } else {
    TORCH_CHECK(n > 0, "generator step: batch size must be at least 1, got ", n);
    at::Tensor z = zIn.defined() ? zIn : noise(n);
    TORCH_CHECK(z.dim() == 2 && z.size(1) == spec.zDim, "noise: expected shape [", n, ", ", spec.zDim, "], got ", z.sizes());
    checkNoise(z);
    fake = G.forward(z);
  }
  fake_ = at::Tensor();
  optG->zeroGrad();
  // G's update needs gradients through D, not D's own weight gradients (a script computes those and
  // throws them away at D's next zero_grad). Freezing D skips that work; losses and weights are equal.
  FreezeGuard freezeD(D.parameters());
  at::Tensor out = D.forward(fake);
  at::Tensor gLoss = loss(out, 1.0);  // flipped labels: G wants D to call its fakes real
  guardFinite(gLoss, "generator");
  gLoss.backward();
  update(*optG);
  StepTensors r;
  r.gLoss = gLoss.detach();
  r.dFake = meanProb(out);
  return r;
}

StepTensors GanStep::step(const at::Tensor& real, const at::Tensor& zD, const at::Tensor& zG) {
  StepTensors d = stepD(real, zD);
  StepTensors g = stepG(real.size(0), zG);
  ++stepCount_;
  return {d.dLoss, g.gLoss, d.dReal, d.dFake};
}

bool GanStep::graphUsable() const { return cudaGraphs && capturable && device.is_cuda() && graphFailure_.empty() && cudaGraphsCompiled(); }

bool GanStep::graphCurrent() const {
  return optG->version == graphVerG_ && optD->version == graphVerD_ && optG->lr == graphLrG_ && optD->lr == graphLrD_ &&
         G.training == graphTrainG_ && D.training == graphTrainD_;
}

std::string GanStep::graphStatus() const {
  if (!device.is_cuda()) return "off: not on a CUDA device";
  if (!cudaGraphs) return "off: disabled (cudaGraphs: false)";
  if (!capturable) return "off: needs capturable: true";
  if (!cudaGraphsCompiled()) return "off: this build has no CUDA graph support (LibTorch's CUDA headers were not found at build time)";
  if (!graphFailure_.empty()) return "off: capture failed: " + graphFailure_;
  if (graph_) return "replaying (batch " + std::to_string(graphBatch_) + ")";
  return "warming up";
}

StepTensors GanStep::stepAuto(const at::Tensor& real) {
  SideStream side(device);
  return stepAutoOnStream(real);
}

StepTensors GanStep::stepAutoOnStream(const at::Tensor& real) {
  if (!graphUsable()) return step(real, {}, {});
  checkBatch(real);
  int64_t n = real.size(0);
  if (graph_ && !graphCurrent()) {
    graph_.reset();  // state the graph cannot see changed: capture again after a warm-up
    warm_ = 0;
  }
  if (graph_) {
    if (n != graphBatch_) return step(real, {}, {});  // an epoch's short last batch: eager, the graph kept
    graphReal_.copy_(real);
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
    return step(real, {}, {});
  }
  graphReal_ = real.clone();
  auto graph = std::make_unique<StepGraph>();
  StepTensors out;
  std::string why;
  int64_t count = stepCount_;
  bool ok = graph->capture([&] { out = step(graphReal_, {}, {}); }, why);
  stepCount_ = count;  // capture records the step without running it
  fake_ = at::Tensor();
  if (!ok) {
    graphFailure_ = why.empty() ? "unknown error" : why;
    graphReal_ = at::Tensor();
    return step(real, {}, {});
  }
  graph_ = std::move(graph);
  graphOut_ = out;
  graphBatch_ = n;
  graphVerG_ = optG->version;
  graphVerD_ = optD->version;
  graphLrG_ = optG->lr;
  graphLrD_ = optD->lr;
  graphTrainG_ = G.training;
  graphTrainD_ = D.training;
  graph_->replay();
  ++stepCount_;
  return graphOut_;
}

EpochResult GanStep::trainEpoch(const at::Tensor& data, const EpochOptions& opt, const std::function<void(const Progress&)>& onProgress,
                                const std::atomic<bool>& stop) {
  int64_t n = data.size(0);
  TORCH_CHECK(opt.batchSize >= 1, "batchSize must be at least 1, got ", opt.batchSize);
  TORCH_CHECK(opt.batchSize <= n, "batchSize ", opt.batchSize, " is larger than the dataset (", n, " images)");
  int64_t steps = opt.dropLast ? n / opt.batchSize : (n + opt.batchSize - 1) / opt.batchSize;
  TORCH_CHECK(opt.startStep >= 0 && opt.startStep < steps, "startStep must be in [0, ", steps, ") (the epoch has ", steps, " steps), got ",
              opt.startStep);
  at::Tensor perm;
  if (opt.shuffle) {
    // A seeded generator of its own: the global one stays reserved for noise and dropout.
    auto gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
    perm = at::randperm(n, gen, at::TensorOptions().dtype(at::kLong)).to(data.device());
  }
  SideStream side(device);
  // Per-step [dLoss, gLoss, dReal, dFake] from startStep on, kept on the device: reports and the
  // epoch's means read it.
  const int64_t first = opt.startStep;
  at::Tensor losses = at::empty({steps - first, 4}, at::TensorOptions().dtype(at::kDouble).device(device));
  int64_t reported = first;
  EpochResult res;
  int64_t s = first;
  for (; s < steps; ++s) {
    if (stop.load()) {
      res.aborted = true;  // at a step boundary: weights, optimizer state and RNG are those after step s
      break;
    }
    int64_t start = s * opt.batchSize, len = std::min(opt.batchSize, n - start);
    at::Tensor batch = opt.shuffle ? data.index_select(0, perm.narrow(0, start, len)) : data.narrow(0, start, len);
    if (batch.scalar_type() == at::kByte) {
      batch = batch.to(dtype).div_(255);
      if (opt.normalizeMinusOneOne) batch.sub_(0.5).div_(0.5);
    } else if (batch.scalar_type() != dtype) {
      batch = batch.to(dtype);
    }
    if (batch.dim() > 2) batch = batch.flatten(1);
    StepTensors r = stepAutoOnStream(batch);
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
