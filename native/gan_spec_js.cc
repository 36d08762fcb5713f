#include "gan_spec_js.h"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ltg {

namespace {

// The layer kinds the native executor runs, by the facade's class names (see sequential.h for what a
// new kind touches).
constexpr js::Choice<Layer::Kind> kLayerKinds[] = {
    {"Linear", Layer::Kind::Linear},           {"ReLU", Layer::Kind::ReLU},
    {"LeakyReLU", Layer::Kind::LeakyReLU},     {"Tanh", Layer::Kind::Tanh},
    {"Sigmoid", Layer::Kind::Sigmoid},         {"Dropout", Layer::Kind::Dropout},
    {"BatchNorm1d", Layer::Kind::BatchNorm1d}, {"BatchNorm2d", Layer::Kind::BatchNorm2d},
    {"Flatten", Layer::Kind::Flatten},         {"Unflatten", Layer::Kind::Unflatten},
    {"Conv2d", Layer::Kind::Conv2d},           {"ConvTranspose2d", Layer::Kind::ConvTranspose2d},
};

// GanStepSpec's strings, in the order its type lists them.
constexpr js::Choice<GanSpec::Loss> kLosses[] = {{"bceWithLogits", GanSpec::Loss::BceWithLogits},
                                                 {"bce", GanSpec::Loss::Bce},
                                                 {"leastSquares", GanSpec::Loss::LeastSquares},
                                                 {"hinge", GanSpec::Loss::Hinge},
                                                 {"wasserstein", GanSpec::Loss::Wasserstein}};
constexpr js::Choice<PenaltySpec::Kind> kPenalties[] = {{"wgan-gp", PenaltySpec::Kind::WganGp}, {"r1", PenaltySpec::Kind::R1}};
constexpr js::Choice<GanSpec::Reduction> kReductions[] = {{"sum", GanSpec::Reduction::Sum}, {"mean", GanSpec::Reduction::Mean}};
constexpr js::Choice<GanSpec::GNoise> kGNoises[] = {{"fresh", GanSpec::GNoise::Fresh}, {"reuse", GanSpec::GNoise::Reuse}};
constexpr js::Choice<NoiseSpec::Dist> kNoiseDists[] = {{"normal", NoiseSpec::Dist::Normal}, {"uniform", NoiseSpec::Dist::Uniform}};

// An [h, w] pair of a convolution (stride, padding, dilation, outputPadding).
std::vector<int64_t> pairFromJs(const js::Value& v, js::IntRange r) {
  std::vector<int64_t> out = v.integers(r);
  if (out.size() != 2) v.fail("an [h, w] pair of integers");
  return out;
}

// A Linear's or convolution's spectral norm, null for none: what nativeFields() gives for a weight that
// nn.utils.parametrizations.spectralNorm parametrizes (Sequential::check matches u and v to the weight).
std::optional<Layer::SpectralNorm> spectralNormFromJs(const js::Value& v) {
  if (v.isNullish()) return std::nullopt;
  js::Object o = v.object();
  Layer::SpectralNorm sn;
  sn.u = o["u"].tensor();
  sn.v = o["v"].tensor();
  sn.nPowerIterations = o["nPowerIterations"].integer(js::kPositive);
  sn.eps = o["eps"].finite();
  if (!(sn.eps > 0)) o["eps"].failRange("a number > 0");
  sn.dim = o["dim"].integer(js::kNonNegative);
  return sn;
}

}  // namespace

Sequential layersFromJs(const js::Value& v, const char* which) {
  Sequential seq;
  uint32_t n = v.array().Length();
  for (uint32_t i = 0; i < n; ++i) {
    js::Object entry = v.at(i).object();
    Layer l;
    l.name = std::string(which) + "." + entry["name"].string();
    js::Object f = entry.withPath(l.name);
    l.kind = f["kind"].oneOf(kLayerKinds);
    using K = Layer::Kind;
    switch (l.kind) {
      case K::Linear:
        l.weight = f["weight"].tensor();
        l.bias = f["bias"].tensorOrNone();
        l.spectralNorm = spectralNormFromJs(f["spectralNorm"]);
        break;
      case K::LeakyReLU: l.slope = f["negativeSlope"].finite(); break;
      case K::Dropout: l.p = f["p"].finite(); break;
      case K::Conv2d:
      case K::ConvTranspose2d:
        l.weight = f["weight"].tensor();
        l.bias = f["bias"].tensorOrNone();
        l.stride = pairFromJs(f["stride"], js::kPositive);
        l.padding = pairFromJs(f["padding"], js::kNonNegative);
        l.dilation = pairFromJs(f["dilation"], js::kPositive);
        if (l.kind == K::ConvTranspose2d) l.outputPadding = pairFromJs(f["outputPadding"], js::kNonNegative);
        l.groups = f["groups"].integer(js::kPositive);
        l.spectralNorm = spectralNormFromJs(f["spectralNorm"]);
        break;
      case K::BatchNorm1d:
      case K::BatchNorm2d:
        l.weight = f["weight"].tensorOrNone();  // none without affine
        l.bias = f["bias"].tensorOrNone();
        l.runningMean = f["runningMean"].tensorOrNone();
        l.runningVar = f["runningVar"].tensorOrNone();
        l.numBatchesTracked = f["numBatchesTracked"].tensorOrNone();
        l.eps = f["eps"].finite();
        l.momentum = f["momentum"].finite();
        break;
      case K::Flatten:
        l.startDim = f["startDim"].integer();
        l.endDim = f["endDim"].integer();
        break;
      case K::Unflatten:
        l.dim = f["dim"].integer();
        l.sizes = f["sizes"].integers();
        break;
      case K::ReLU:
      case K::Tanh:
      case K::Sigmoid: break;
    }
    seq.layers.push_back(std::move(l));
  }
  return seq;
}

GanSpec ganSpecFromJs(const js::Value& v) {
  js::Object s = v.object();
  GanSpec spec;
  spec.loss = s["loss"].oneOf(kLosses);
  spec.realLabel = s["realLabel"].finite();
  spec.fakeLabel = s["fakeLabel"].finite();
  spec.dLossReduction = s["dLossReduction"].oneOf(kReductions);
  spec.detachFakeForD = s["detachFakeForD"].boolean();
  spec.gNoise = s["gNoise"].oneOf(kGNoises);
  spec.separateDBackward = s["separateDBackward"].boolean();
  js::Object nz = s["noise"].object();
  spec.noise.dist = nz["dist"].oneOf(kNoiseDists);
  spec.noise.dim = nz["dim"].integer(js::kPositive);
  spec.noise.low = nz["low"].finiteOr(-1);
  spec.noise.high = nz["high"].finiteOr(1);
  if (nz.has("shape")) spec.noise.shape = nz["shape"].integers(js::kPositive);
  js::Object cond = s["conditioning"].objectOrEmpty();
  if (cond.has("classes")) spec.conditioning.classes = cond["classes"].integer({2, std::numeric_limits<int32_t>::max()});
  // The recipes (ts/gan/step-spec.ts checks the same ranges; this reader guards direct native use).
  if (s.has("penalty")) {
    js::Object pen = s["penalty"].object();
    spec.penalty.kind = pen["type"].oneOf(kPenalties);
    spec.penalty.weight = pen["weight"].finite();
    if (!(spec.penalty.weight > 0)) pen["weight"].failRange("a number > 0");
    spec.penalty.every = pen["every"].integerOr(1, js::kPositive);
  }
  spec.dSteps = s["dSteps"].integerOr(1, js::kPositive);
  if (s.has("ema")) {
    js::Object ema = s["ema"].object();
    spec.ema.on = true;
    spec.ema.decay = ema["decay"].finite();
    if (!(spec.ema.decay > 0 && spec.ema.decay < 1)) ema["decay"].failRange("in (0, 1)");
    spec.ema.start = ema["start"].integerOr(0, js::kNonNegative);
  }
  if (s.has("augment")) spec.augment = s["augment"].string();
  return spec;
}

}  // namespace ltg
