// The variants of one GAN step, field for field ts/gan/step-spec.ts's GanStepSpec: the same names, its
// strings as enums (read by gan_spec_js.cc). Plain data, no LibTorch.
#pragma once
#include <cstdint>
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

struct GanSpec {
  enum class Loss { BceWithLogits, Bce };  // 'bceWithLogits' on D's logits, 'bce' on D's probabilities
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
};

}  // namespace ltg
