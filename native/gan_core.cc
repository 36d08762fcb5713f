#include "gan_core.h"

#include "autograd.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace ltg {

namespace {
// "100, 1, 1": one sample's sizes, for shapes written as [N, ...].
std::string joinSizes(const std::vector<int64_t>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out;
}
}  // namespace

GanCore::GanCore(Sequential g, Sequential d, std::shared_ptr<Optimizer> og, std::shared_ptr<Optimizer> od, GanSpec s, Sequential ema)
    : G(std::move(g)), D(std::move(d)), E(std::move(ema)), optG(std::move(og)), optD(std::move(od)), spec(s) {
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
  NoiseSpec& nz = spec.noise;
  if (nz.shape.empty()) nz.shape = {nz.dim};
  const int64_t classes = spec.conditioning.classes;
  int64_t prod = 1;
  for (int64_t v : nz.shape) prod *= v;
  TORCH_CHECK(prod == nz.dim && nz.shape[0] >= 1, "GanStep: noise shape [", joinSizes(nz.shape), "] does not hold ", nz.dim,
              " values (noise.dim)");
  TORCH_CHECK(classes >= 0, "GanStep: classes must be >= 0, got ", classes);
  // G reads the noise (plus one-hot labels) in dimension 1.
  int64_t gIn = nz.shape[0] + classes;
  const char* plus = classes ? " plus the classes' one-hot labels" : "";
  TORCH_CHECK(G.inFeatures() == -1 || G.inFeatures() == gIn, "GanStep: noise of shape [N, ", joinSizes(nz.shape), "]", plus,
              " gives the generator ", gIn, " input features or channels, but its first layer takes ", G.inFeatures());
  TORCH_CHECK(G.inputRank() == -1 || G.inputRank() == int64_t(nz.shape.size()) + 1, "GanStep: noise of shape [N, ", joinSizes(nz.shape),
              "] has rank ", nz.shape.size() + 1, ", the generator's first layer takes rank ", G.inputRank(),
              G.inputRank() == 4 ? " ([N, C, H, W]: give the noise a shape such as [dim, 1, 1])" : "");
  TORCH_CHECK(classes == 0 || D.inFeatures() == -1 || D.inFeatures() > classes, "GanStep: the discriminator takes ", D.inFeatures(),
              " input features or channels, which cannot hold the image and ", classes, " one-hot label values");
  bad_ = at::zeros({}, at::TensorOptions().dtype(at::kFloat).device(device));
  checkRecipes();
}

void GanCore::checkRecipes() {
  using L = GanSpec::Loss;
  if (spec.loss == L::Hinge || spec.loss == L::Wasserstein)
    TORCH_CHECK(spec.realLabel == 1 && spec.fakeLabel == 0, "GanStep: loss '", spec.loss == L::Hinge ? "hinge" : "wasserstein",
                "' takes no labels: realLabel must be 1 and fakeLabel 0, got ", spec.realLabel, " and ", spec.fakeLabel);
  if (!spec.augment.empty()) {
    augment_ = parseDiffAugmentPolicy(spec.augment, "GanStep: spec.augment");
    TORCH_CHECK(D.inputRank() == 4, "GanStep: augment '", spec.augment,
                "' needs a discriminator that takes images [N, C, H, W]; this one's first layer is a Linear (it reads flat vectors)");
  }
  if (spec.ema.on) {
    std::vector<at::Tensor> gt = G.tensors(), et = E.tensors();
    bool same = gt.size() == et.size() && G.layers.size() == E.layers.size();
    for (size_t i = 0; same && i < gt.size(); ++i)
      same = gt[i].sizes() == et[i].sizes() && gt[i].scalar_type() == et[i].scalar_type() && et[i].device() == device;
    E.training = false;  // it only generates (samples, evaluation): BatchNorm on G's running statistics
    TORCH_CHECK(same, "GanStep: spec.ema needs an EMA generator with the generator's layers, shapes, dtype and device (",
                E.layers.empty() ? "none was given" : "the one given differs", ")");
  } else {
    TORCH_CHECK(E.layers.empty(), "GanStep: an EMA generator was given but the step spec has no ema");
  }
}

at::Tensor GanCore::dLossTerm(const at::Tensor& out, bool real) const {
  switch (spec.loss) {
    case GanSpec::Loss::Hinge: return real ? at::relu(out.neg().add(1)).mean() : at::relu(out.add(1)).mean();
    case GanSpec::Loss::Wasserstein: return real ? out.mean().neg() : out.mean();
    default: return loss(out, real ? spec.realLabel : spec.fakeLabel);
  }
}

at::Tensor GanCore::gLossTerm(const at::Tensor& out) const {
  switch (spec.loss) {
    case GanSpec::Loss::Hinge:
    case GanSpec::Loss::Wasserstein: return out.mean().neg();
    default: return loss(out, 1.0);  // flipped labels: G wants D to call its fakes real
  }
}

at::Tensor GanCore::augment(const at::Tensor& x) const { return augment_.empty() ? x : diffAugment(x, augment_); }

at::Tensor GanCore::penalty(const at::Tensor& realIn, const at::Tensor& realOut, const at::Tensor& fake, const at::Tensor& y) const {
  const PenaltySpec& p = spec.penalty;
  const int64_t n = realIn.size(0);
  GradOptions create{/*retainGraph=*/true, /*createGraph=*/true, /*allowUnused=*/false, /*checkLocks=*/false};
  // d out / d in outside autocast, and for fp16 through the scaled output, unscaled after (PyTorch's AMP
  // recipe for gradient penalties).
  auto gradOf = [&](const at::Tensor& out, const at::Tensor& in, const at::Tensor& gradOut, const char* who) {
    at::Tensor g;
    {
      auto paused = autocastPaused(device);
      g = grad({scaled(out)}, {in}, {gradOut}, create, who)[0];
    }
    return gradScale_.defined() ? g / gradScale_ : g;
  };
  at::Tensor term;
  if (p.kind == PenaltySpec::Kind::WganGp) {
    // ganLosses.wganGpPenalty's ops: eps ~ U[0, 1) per sample, interpolates a leaf, ||grad||_2 per sample.
    std::vector<int64_t> shape(realIn.dim(), 1);
    shape[0] = n;
    at::Tensor eps = at::rand(shape, realIn.options());
    at::Tensor x = eps.mul(realIn.detach()).add(eps.neg().add(1).mul(fake.detach())).requires_grad_(true);
    at::Tensor out = D.forward(dInput(x, y));
    at::Tensor g = gradOf(out, x, at::ones_like(out), "GanStep: the wgan-gp penalty");
    term = at::linalg_vector_norm(g.reshape({n, -1}), 2, {1}).sub(1).pow(2).mean();
  } else {
    // ganLosses.r1Penalty's: the squared gradient of D's output on reals, summed per sample, averaged.
    at::Tensor g = gradOf(realOut.sum(), realIn, at::Tensor(), "GanStep: the r1 penalty");
    std::vector<int64_t> dims;
    for (int64_t i = 1; i < realIn.dim(); ++i) dims.push_back(i);
    term = g.pow(2).sum(dims).mean();
  }
  double w = (p.kind == PenaltySpec::Kind::R1 ? p.weight / 2 : p.weight) * double(p.every);
  return term.mul(w);
}

void GanCore::updateEma() {
  if (!spec.ema.on) return;
  at::NoGradGuard ng;
  ++emaUpdates;
  std::vector<at::Tensor> gp = G.parameters(), ep = E.parameters();
  if (emaUpdates <= spec.ema.start) {
    for (size_t i = 0; i < ep.size(); ++i) ep[i].copy_(gp[i]);
  } else {
    at::_foreach_lerp_(ep, gp, 1 - spec.ema.decay);  // torch.optim.swa_utils.get_ema_multi_avg_fn's update
  }
  // Buffers (BatchNorm's running statistics, spectral norm's u and v) are G's own, copied.
  std::vector<at::Tensor> gt = G.tensors(), et = E.tensors();
  std::set<const void*> params;
  for (const auto& t : gp) params.insert(t.unsafeGetTensorImpl());
  for (size_t i = 0; i < gt.size(); ++i)
    if (!params.count(gt[i].unsafeGetTensorImpl())) et[i].copy_(gt[i]);
}

std::vector<at::Tensor> GanCore::ownedTensors() const {
  std::vector<at::Tensor> out = G.tensors();
  for (const auto& t : D.tensors()) out.push_back(t);
  for (const auto& t : E.tensors()) out.push_back(t);
  for (const Optimizer* o : {optG.get(), optD.get()}) {
    for (const auto& p : o->params()) out.push_back(p);
    for (const auto& t : o->stateTensors()) out.push_back(t);
  }
  size_t n = out.size();
  for (size_t i = 0; i < n; ++i)
    if (out[i].grad().defined()) out.push_back(out[i].grad());
  return out;
}

at::Tensor GanCore::noise(int64_t n) const {
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  std::vector<int64_t> shape{n};
  const NoiseSpec& nz = spec.noise;
  shape.insert(shape.end(), nz.shape.begin(), nz.shape.end());
  if (nz.dist == NoiseSpec::Dist::Normal) return at::randn(shape, opts);
  return at::rand(shape, opts) * (nz.high - nz.low) + nz.low;
}

at::Tensor GanCore::drawLabels(int64_t n) const {
  return at::randint(spec.conditioning.classes, {n}, at::TensorOptions().dtype(at::kLong).device(device));
}

namespace {
// y's one-hot rows [N, classes] in x's dtype, spread to x's trailing sizes ([N, classes, H, W]) and
// concatenated after x's own features or channels.
at::Tensor withOneHot(const at::Tensor& x, const at::Tensor& y, int64_t classes) {
  at::Tensor oh = at::one_hot(y, classes).to(x.scalar_type());
  if (x.dim() > 2) {
    std::vector<int64_t> view{x.size(0), classes}, sizes = x.sizes().vec();
    view.resize(x.dim(), 1);
    sizes[1] = classes;
    oh = oh.view(view).expand(sizes);
  }
  return at::cat({x, oh}, 1);
}
}  // namespace

at::Tensor GanCore::gInput(const at::Tensor& z, const at::Tensor& y) const {
  const int64_t classes = spec.conditioning.classes;
  return classes ? withOneHot(z, y, classes) : z;
}

at::Tensor GanCore::dInput(const at::Tensor& x, const at::Tensor& y) const {
  const int64_t classes = spec.conditioning.classes;
  return classes ? withOneHot(x, y, classes) : x;
}

at::Tensor GanCore::generate(const at::Tensor& z, const at::Tensor& y, bool ema) const {
  TORCH_CHECK(!ema || spec.ema.on, "generate: this GAN keeps no EMA generator (its step spec has no ema)");
  checkNoise(z, z.dim() > 0 ? z.size(0) : -1);
  at::Tensor labels = checkLabels(y, z.size(0), "labels");
  return (ema ? E : G).forward(gInput(z, labels));
}

at::Tensor GanCore::checkLabels(const at::Tensor& y, int64_t n, const char* what) const {
  const int64_t classes = spec.conditioning.classes;
  if (!classes) {
    TORCH_CHECK(!y.defined(), what, ": this GAN is not conditional (its step spec has no conditioning), so it takes no labels");
    return y;
  }
  TORCH_CHECK(y.defined(), what, ": this conditional GAN (", classes, " classes) needs a label per image, got none");
  // TypeError and RangeError in JS, as the facade's own label checks (ts/gan/condition.ts).
  TORCH_CHECK_TYPE(!at::isFloatingType(y.scalar_type()) && !at::isComplexType(y.scalar_type()) && y.scalar_type() != at::kBool, what,
                   ": expected integer class indices, got dtype ", y.scalar_type());
  TORCH_CHECK(y.dim() == 1 && y.size(0) == n, what, ": expected shape [", n, "] (one label per image), got ", y.sizes());
  TORCH_CHECK(y.device() == device, what, ": expected device ", device, " (the models' device), got ", y.device());
  if (n > 0 && !labelsChecked_) {
    // One read back of the extremes: a label out of range would otherwise be a device-side assert.
    at::Tensor mm = at::stack({y.min(), y.max()}).to(at::kLong).to(at::kCPU);
    int64_t lo = mm[0].item<int64_t>(), hi = mm[1].item<int64_t>();
    TORCH_CHECK_INDEX(lo >= 0 && hi < classes, what, ": label ", lo < 0 ? lo : hi, " is outside [0, ", classes, ") (the ", classes,
                      " classes)");
  }
  return y.to(at::kLong);
}

at::Tensor GanCore::loss(const at::Tensor& out, double label) const {
  at::Tensor target = at::full_like(out, label);
  switch (spec.loss) {
    case GanSpec::Loss::BceWithLogits: return at::binary_cross_entropy_with_logits(out, target);
    case GanSpec::Loss::Bce: return at::binary_cross_entropy(out, target);
    case GanSpec::Loss::LeastSquares: return at::mse_loss(out, target);
    default: TORCH_CHECK(false, "GanStep: loss ", int(spec.loss), " has no labels");
  }
}

at::Tensor GanCore::meanProb(const at::Tensor& out) const {
  at::NoGradGuard ng;
  return spec.loss == GanSpec::Loss::BceWithLogits ? at::sigmoid(out).mean() : out.mean();
}

void GanCore::checkBatch(const at::Tensor& real) const {
  const int64_t classes = spec.conditioning.classes;
  int64_t width = D.inFeatures() < 0 ? -1 : D.inFeatures() - classes;
  if (D.inputRank() == 4) {
    TORCH_CHECK(real.dim() == 4 && real.size(1) == width,
                "real batch: the convolutional discriminator expects images of shape [N, C, H, W] with C = ", width, ", got shape ",
                real.sizes());
  } else {
    TORCH_CHECK(real.dim() == 2 && (width < 0 || real.size(1) == width), "real batch: expected shape [batch, ", width, "]",
                classes ? " (the image's values; the one-hot labels are appended)" : "", ", got ", real.sizes());
  }
  TORCH_CHECK(real.size(0) > 0, "real batch: batch size must be at least 1, got 0");
  TORCH_CHECK(real.scalar_type() == dtype, "real batch: expected dtype ", dtype, " (the models' dtype), got ", real.scalar_type(),
              " (uint8 images go through trainEpoch, which normalizes them)");
  TORCH_CHECK(real.device() == device, "real batch: expected device ", device, " (the models' device), got ", real.device());
}

void GanCore::checkNoise(const at::Tensor& z, int64_t n) const {
  const std::vector<int64_t>& shape = spec.noise.shape;
  bool shapeOk = z.dim() == int64_t(shape.size()) + 1 && z.size(0) == n && n >= 0;
  for (size_t i = 0; shapeOk && i < shape.size(); ++i) shapeOk = z.size(i + 1) == shape[i];
  TORCH_CHECK(shapeOk, "noise: expected shape [", n < 0 ? "N" : std::to_string(n), ", ", joinSizes(shape), "], got ", z.sizes());
  TORCH_CHECK(z.scalar_type() == dtype, "noise: expected dtype ", dtype, " (the models' dtype), got ", z.scalar_type());
  TORCH_CHECK(z.device() == device, "noise: expected device ", device, " (the models' device), got ", z.device());
}

// Keep the last good weights: a non-finite loss stops the step before its optimizer runs. On CPU the
// check is free; on CUDA it would force a sync per step, so there it runs at progress reports.
void GanCore::checkFinite(const at::Tensor& l, const char* which) const {
  if (device.is_cpu()) {
    double v = l.item<double>();
    TORCH_CHECK(std::isfinite(v), which, " loss is ", v, " at step ", stepCount_ + 1,
                "; training stopped before this update, weights are those of the last good step");
  }
}

void GanCore::guardFinite(const at::Tensor& l, const char* which) {
  if (!group) judgeFinite(l, which);
}

void GanCore::judgeFinite(const at::Tensor& l, const char* which) {
  if (!capturable) return checkFinite(l, which);
  at::NoGradGuard ng;
  bad_.copy_(at::maximum(bad_, at::isfinite(l.detach()).logical_not().to(bad_.scalar_type())));
}

void GanCore::update(Optimizer& opt, std::vector<at::Tensor*> scalars, const char* lossName) {
  if (group) averageGrads(opt, std::move(scalars), lossName);
  if (gradScale_.defined()) {
    // GradScaler.step: the gradients unscaled, checked for inf/NaN; an overflow skips this update
    at::NoGradGuard ng;
    at::Tensor inf = at::zeros({}, gradScale_.options());
    std::vector<at::Tensor> grads;
    for (const auto& p : opt.params())
      if (p.grad().defined()) grads.push_back(p.grad());
    at::_amp_foreach_non_finite_check_and_unscale_(grads, inf, gradScale_.reciprocal());
    stepFoundInf_.add_(inf);
    if (capturable) opt.stepCapturable(at::maximum(bad_, inf));
    else if (inf.item<float>() == 0) opt.step();
    return;
  }
  if (capturable) opt.stepCapturable(bad_);
  else opt.step();
}

void GanCore::setPrecision(Precision p) {
  precision = p;
  if (p != Precision::Fp16) {
    gradScale_ = growthTracker_ = stepFoundInf_ = at::Tensor();
    return;
  }
  auto f = at::TensorOptions().dtype(at::kFloat).device(device);
  gradScale_ = at::full({}, 65536.0, f);
  growthTracker_ = at::zeros({}, f.dtype(at::kInt));
  stepFoundInf_ = at::zeros({}, f);
}

void GanCore::updateScale() {
  if (!gradScale_.defined()) return;
  at::NoGradGuard ng;
  at::_amp_update_scale_(gradScale_, growthTracker_, stepFoundInf_, 2.0, 0.5, kScaleGrowthInterval);
  stepFoundInf_.zero_();
}

void GanCore::forgetFake() {
  fake_ = at::Tensor();
  fakeLabels_ = at::Tensor();
}

}  // namespace ltg
