#include "fast_path.h"

#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <set>
#include <string>

namespace ltg {

namespace {
// The recipes beyond the seeds' BCE steps run on the autograd path: the fast path writes out only BCE's
// gradient and one D update per G update, without double backward, augmentation or an EMA.
std::string recipesUnsupported(const GanSpec& sp) {
  if (sp.loss != GanSpec::Loss::BceWithLogits && sp.loss != GanSpec::Loss::Bce)
    return "the fast path writes out only the BCE losses' gradients, not this step's loss";
  if (sp.penalty.kind != PenaltySpec::Kind::None) return "a gradient penalty needs double backward (autograd)";
  if (sp.dSteps != 1) return "dSteps > 1 (the fast path runs one D update per G update)";
  if (sp.ema.on) return "the EMA of G is updated on the autograd path";
  if (!sp.augment.empty()) return "DiffAugment runs on the autograd path";
  return "";
}
}  // namespace

std::string FastPath::unsupported(const GanCore& s) {
  if (s.device.is_cuda() && s.fastPath != 1)
    return "on " + s.device.str() + " the fast path is opt-in (fastPath: true) until it has been verified on a GPU";
  if (!s.device.is_cpu() && !s.device.is_cuda()) return "the fast path runs on CPU and CUDA, not on " + s.device.str();
  for (auto [seq, which] : {std::pair{&s.G, "generator"}, std::pair{&s.D, "discriminator"}}) {
    std::string why = FastNet::unsupported(*seq, which);
    if (!why.empty()) return why;
  }
  std::string recipe = recipesUnsupported(s.spec);
  if (!recipe.empty()) return recipe;
  if (s.precision != Precision::Fp32)
    return "precision " + precisionName(s.precision) + " runs under autocast on the autograd path (the fast path computes in fp32)";
  // G's samples must be what D reads: as many features or channels (D's first layer also takes the
  // one-hot labels), of the same rank. (Sizes are checked each step: they depend on the input's.)
  int64_t gOut = -1, gRank = s.G.layers[0].kind == Layer::Kind::Linear ? 2 : 4;
  for (const auto& l : s.G.layers) {
    if (l.kind == Layer::Kind::Linear || l.kind == Layer::Kind::Conv2d) gOut = l.weight.size(0);
    if (l.kind == Layer::Kind::ConvTranspose2d) gOut = l.weight.size(1) * l.groups;
    if (l.kind == Layer::Kind::Flatten) gRank = 2;
    if (l.kind == Layer::Kind::Unflatten) gRank = 4;
  }
  if (gOut != s.D.inFeatures() - s.spec.conditioning.classes || gRank != s.D.inputRank())
    return "the generator's output does not fit the discriminator's input";
  // Each parameter once, trained by its own model's optimizer (what zero_grad + backward + step would touch).
  std::set<const void*> seen;
  for (auto [seq, o, which] : {std::tuple{&s.G, s.optG.get(), "generator"}, std::tuple{&s.D, s.optD.get(), "discriminator"}}) {
    std::set<const void*> mine;
    for (const auto& l : seq->layers)
      for (const at::Tensor* p : {&l.weight, &l.bias}) {
        if (!p->defined()) continue;
        if (!p->requires_grad()) return std::string("the ") + which + "'s " + l.name + " does not require grad (a frozen layer)";
        if (!seen.insert(p->unsafeGetTensorImpl()).second) return "a parameter is used twice (" + l.name + ")";
        mine.insert(p->unsafeGetTensorImpl());
      }
    std::set<const void*> trained;
    for (const auto& p : o->params()) trained.insert(p.unsafeGetTensorImpl());
    if (trained != mine) return std::string("the ") + which + "'s optimizer does not train exactly the " + which + "'s parameters";
  }
  return "";
}

FastPath::FastPath(GanCore& s) : s_(s), g_(s.G), d_(s.D) {}

namespace {
// The gradient of BCE (on probabilities) or BCE-with-logits (mean over `out`) times `scale`, into dst:
// the kernels autograd's BinaryCrossEntropyBackward0 / BinaryCrossEntropyWithLogitsBackward0 run.
void lossGrad(at::Tensor dst, const at::Tensor& out, double label, double scale, bool logits) {
  if (logits) {
    at::sigmoid_out(dst, out);
    dst.sub_(label).mul_(scale).div_(double(out.numel()));
  } else {
    at::binary_cross_entropy_backward_out(dst, at::scalar_tensor(scale, out.options()), out, at::full_like(out, label), {},
                                          at::Reduction::Mean);
  }
}
}  // namespace

StepTensors FastPath::step(const at::Tensor& real, const at::Tensor& yIn, const at::Tensor& zIn, const at::Tensor& yDIn,
                           const at::Tensor& zGIn, const at::Tensor& yGIn) {
  GanCore& s = s_;
  const GanSpec& sp = s.spec;
  const int64_t classes = sp.conditioning.classes;
  const bool logits = sp.loss == GanSpec::Loss::BceWithLogits, mean = sp.dLossReduction == GanSpec::Reduction::Mean;
  using Clock = std::chrono::steady_clock;
  auto last = Clock::now();
  auto lap = [&](Phase p) {
    if (!profiling) return;
    auto now = Clock::now();
    phaseMs[p] += std::chrono::duration<double, std::milli>(now - last).count();
    last = now;
  };
  // The checks and draws of stepD and stepG, in their order: D's noise and fake labels, G's dropout
  // masks, D's masks for its real and fake passes, then G's noise, labels and masks (D's masks for G's
  // update are drawn when it runs: nothing draws in between). With fresh noise for G, G's two forward
  // passes then run as one product: G's weights do not change between them, and BatchNorm in G still
  // sees each batch alone.
  s.checkBatch(real);
  const int64_t n = real.size(0);
  at::Tensor y = s.checkLabels(yIn, n, "labels");
  at::Tensor z = zIn.defined() ? zIn : s.noise(n);
  s.checkNoise(z, n);
  at::Tensor yFake;
  if (classes) yFake = yDIn.defined() ? s.checkLabels(yDIn, n, "fake labels") : s.drawLabels(n);
  else s.checkLabels(yDIn, n, "fake labels");
  at::NoGradGuard noGraph;
  s.forgetFake();
  const bool fresh = sp.gNoise == GanSpec::GNoise::Fresh;
  g_.reserve(fresh ? 2 * n : n);
  d_.reserve(2 * n);
  lap(Losses);  // the checks and noise draws
  g_.drawMasks(0, n);
  d_.drawMasks(0, n);  // the masks a real pass, then a fake pass, would draw
  d_.drawMasks(n, n);
  lap(Masks);
  at::Tensor gIn = s.gInput(z, yFake), yG = yFake;
  if (fresh) {
    at::Tensor z2 = zGIn.defined() ? zGIn : s.noise(n);
    s.checkNoise(z2, n);
    if (classes) yG = yGIn.defined() ? s.checkLabels(yGIn, n, "fake labels") : s.drawLabels(n);
    else s.checkLabels(yGIn, n, "fake labels");
    gIn = at::cat({gIn, s.gInput(z2, yG)});
    lap(Losses);
    g_.drawMasks(n, n);
    lap(Masks);
  }
  at::Tensor fakes = g_.forward(gIn, gIn.size(0), fresh ? 2 : 1);
  at::Tensor fake = fakes.narrow(0, 0, n), fakeG = fresh ? fakes.narrow(0, n, n) : fake;
  lap(GForward);

  // D's update on the real and fake rows at once.
  TORCH_CHECK(fake.sizes().slice(1) == real.sizes().slice(1), "the generator's samples have shape ", fake.sizes().slice(1),
              ", the real images ", real.sizes().slice(1), ": the discriminator takes one shape");
  at::Tensor realIn = s.dInput(real, y);
  // D's batched input [2n, ...], kept per batch size as the nets' buffers.
  std::vector<int64_t> sizes = realIn.sizes().vec();
  sizes[0] = 2 * n;
  at::Tensor& dIn = dIn_[n];
  if (!dIn.defined() || dIn.sizes() != at::IntArrayRef(sizes))
    dIn = at::empty(sizes, real.options().memory_format(realIn.dim() == 4 ? d_.format() : at::MemoryFormat::Contiguous));
  dIn.narrow(0, 0, n).copy_(realIn);
  dIn.narrow(0, n, n).copy_(s.dInput(fake, yFake));
  at::Tensor out = d_.forward(dIn, 2 * n, 2);
  lap(DForward);
  at::Tensor outR = out.narrow(0, 0, n), outF = out.narrow(0, n, n);
  at::Tensor lossReal = s.loss(outR, sp.realLabel), lossFake = s.loss(outF, sp.fakeLabel);
  StepTensors r;
  double scale = 1;
  if (sp.separateDBackward) {
    s.guardFinite(lossReal, "discriminator (real)");
    s.guardFinite(lossFake, "discriminator (fake)");
    r.dLoss = lossReal + lossFake;
  } else {
    r.dLoss = mean ? (lossReal + lossFake) / 2 : lossReal + lossFake;
    s.guardFinite(r.dLoss, "discriminator");
    if (mean) scale = 0.5;
  }
  at::Tensor dOut = d_.outputGrad(0, 2 * n);
  lossGrad(dOut.narrow(0, 0, n), outR, sp.realLabel, scale, logits);
  lossGrad(dOut.narrow(0, n, n), outF, sp.fakeLabel, scale, logits);
  r.dReal = s.meanProb(outR);
  r.dFake = s.meanProb(outF);
  lap(Losses);
  d_.backward(dIn, 0, 2 * n, 2, /*weightGrads=*/true, {});
  lap(DBackward);
  d_.attachGrads();
  s.update(*s.optD, {&r.dLoss, &r.dReal, &r.dFake}, "discriminator");
  lap(Updates);

  // G's update: its fake (or D's, reused) through the updated D.
  at::Tensor dIn2 = s.dInput(fakeG, yG);
  lap(DForward);
  d_.drawMasks(0, n);
  lap(Masks);
  at::Tensor out2 = d_.forward(dIn2, n, 1);
  lap(DForward);
  r.gLoss = s.loss(out2, 1.0);  // flipped labels: G wants D to call its fakes real
  s.guardFinite(r.gLoss, "generator");
  lossGrad(d_.outputGrad(0, n), out2, 1.0, 1.0, logits);
  lap(Losses);
  const int64_t gRow = fresh ? n : 0;  // G's rows of this update
  at::Tensor gOutGrad = g_.outputGrad(gRow, n);
  // A conditional D's input gradient for the image's channels or features only (not the one-hot labels').
  d_.backward(dIn2, 0, n, 1, /*weightGrads=*/false, gOutGrad);
  lap(DBackward);
  g_.backward(gIn.narrow(0, gRow, n), gRow, n, 1, /*weightGrads=*/true, {});
  lap(GBackward);
  g_.attachGrads();
  s.update(*s.optG, {&r.gLoss}, "generator");
  lap(Updates);
  if (profiling) ++profiledSteps;
  return r;
}

}  // namespace ltg
