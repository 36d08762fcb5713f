// The variants of one GAN step, field for field ts/gan/step-spec.ts's GanStepSpec: the same names, its
// strings as enums (read by gan_spec_js.cc). Plain data, no LibTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ltg {

// G's noise: NoiseSpec.
struct NoiseSpec {
  enum class Dist { Uniform, Normal };  // 'uniform': rand * (high - low) + low; 'normal': randn
  Dist dist = Dist::Normal;
  int64_t dim = 100;
  double low = -1, high = 1;
  std::vector<int64_t> shape;  // one sample's noise shape ([dim], or [dim, 1, 1] for a convolutional G); empty: [dim]
};

// Class-conditional (classes > 0): the label's one-hot vector is concatenated to G's noise and to D's
// input along dimension 1 (spread over H x W for images); G's labels are drawn uniformly. ConditioningSpec;
// classes 0 stands for its absence.
struct ConditioningSpec {
  int64_t classes = 0;
};

// A gradient penalty on D (PenaltySpec): 'wgan-gp' (Gulrajani et al.: on interpolates of real and fake,
// target norm 1, weight lambda) or 'r1' (Mescheder et al., on reals; weight gamma, applied as gamma / 2).
// Lazy (every > 1, as StyleGAN2 applies R1): on D updates whose batch index is a multiple of `every`,
// scaled by `every`. Kind None stands for its absence.
struct PenaltySpec {
  enum class Kind { None, WganGp, R1 };
  Kind kind = Kind::None;
  double weight = 0;
  int64_t every = 1;
};

// An exponential moving average of G's weights (EmaSpec): after each G update, ema = lerp(ema, G,
// 1 - decay) on parameters, buffers copied (stylegan2-ada's G_ema); for the first `start` G updates the
// average is a copy of G. on false stands for its absence.
struct EmaSpec {
  bool on = false;
  double decay = 0.999;
  int64_t start = 0;
};

struct GanSpec {
  // 'bceWithLogits' on D's logits, 'bce' on D's probabilities, 'leastSquares' (MSE against the labels),
  // 'hinge' and 'wasserstein' (on D's raw output; labels unused).
  enum class Loss { BceWithLogits, Bce, LeastSquares, Hinge, Wasserstein };
  enum class Reduction { Sum, Mean };      // D's loss: real + fake, or (real + fake) / 2
  enum class GNoise { Reuse, Fresh };      // G's update on D's fake batch, or on fresh noise
  Loss loss = Loss::BceWithLogits;
  double realLabel = 1, fakeLabel = 0;
  Reduction dLossReduction = Reduction::Sum;
  bool detachFakeForD = true;
  GNoise gNoise = GNoise::Fresh;
  bool separateDBackward = false;
  NoiseSpec noise;
  ConditioningSpec conditioning;
  PenaltySpec penalty;
  int64_t dSteps = 1;  // D updates per G update: G updates on batches whose index is a multiple of dSteps
  EmaSpec ema;
  std::string augment;  // a DiffAugment policy ('color,translation,cutout'), applied before D to real and fake; empty: none
  // Whether the step is one of the seeds' (no recipe beyond their BCE losses).
  bool plain() const {
    return (loss == Loss::BceWithLogits || loss == Loss::Bce) && penalty.kind == PenaltySpec::Kind::None && dSteps == 1 && !ema.on &&
           augment.empty();
  }
};

}  // namespace ltg
