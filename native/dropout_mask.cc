#include "dropout_mask.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/MT19937RNGEngine.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>

namespace ltg {

namespace {
constexpr int kN = at::MERSENNE_STATE_N, kM = at::MERSENNE_STATE_M;

inline uint32_t twist(uint32_t u, uint32_t v) {
  return (((u & at::UMASK) | (v & at::LMASK)) >> 1) ^ (static_cast<uint32_t>(-static_cast<int32_t>(v & 1)) & at::MATRIX_A);
}

// at::mt19937's next_state, branch-free.
inline void regenerate(uint32_t* p) {
  for (int j = 0; j < kN - kM; ++j) p[j] = p[j + kM] ^ twist(p[j], p[j + 1]);
  for (int j = kN - kM; j < kN - 1; ++j) p[j] = p[j + kM - kN] ^ twist(p[j], p[j + 1]);
  p[kN - 1] = p[kM - 1] ^ twist(p[kN - 1], p[0]);
}

// `count` outputs of at::mt19937::operator() in order, from its state d (advanced as those calls do).
inline void fill(at::mt19937_data_pod& d, uint32_t* dst, int64_t count) {
  while (count > 0) {
    int64_t ready = d.left_ - 1;  // the engine regenerates on the call that takes left_ to 0
    if (ready == 0) {
      regenerate(d.state_.data());
      d.left_ = kN + 1;
      d.next_ = 0;
      ready = kN;
    }
    int64_t k = std::min(ready, count);
    const uint32_t* s = d.state_.data() + d.next_;
    for (int64_t i = 0; i < k; ++i) {
      uint32_t y = s[i];
      y ^= (y >> 11);
      y ^= (y << 7) & 0x9d2c5680;
      y ^= (y << 15) & 0xefc60000;
      y ^= (y >> 18);
      dst[i] = y;
    }
    d.next_ += uint32_t(k);
    d.left_ -= int(k);
    dst += k;
    count -= k;
  }
}

// Per element: random64() (two draws, the first the high half); its low 53 bits v as a double in [0, 1)
// is v / 2^53, kept when below keep, i.e. when v < ceil(keep * 2^53) (exact: both sides scale by 2^53).
__attribute__((target_clones("avx2", "default"))) void drawBlock(at::mt19937_data_pod& d, float* out, int64_t n, uint64_t threshold,
                                                                 float scale) {
  constexpr int64_t kChunk = 2048;
  uint32_t tmp[2 * kChunk];
  for (int64_t i0 = 0; i0 < n; i0 += kChunk) {
    int64_t c = std::min(kChunk, n - i0);
    fill(d, tmp, 2 * c);
    for (int64_t i = 0; i < c; ++i) {
      uint64_t v = ((uint64_t(tmp[2 * i]) << 32) | tmp[2 * i + 1]) & ((uint64_t(1) << 53) - 1);
      out[i0 + i] = v < threshold ? scale : 0.0f;
    }
  }
}

void drawFast(float* out, int64_t n, double p, at::mt19937& engine) {
  const double keep = 1 - p;
  at::mt19937_data_pod d = engine.data();
  drawBlock(d, out, n, uint64_t(std::ceil(keep * 9007199254740992.0)), 1.0f / static_cast<float>(keep));
  engine.set_data(d);
}
}  // namespace

bool fastDropoutMask(double p) {
  static std::mutex mu;
  static std::map<double, bool> known;
  std::lock_guard<std::mutex> lock(mu);
  auto it = known.find(p);
  if (it != known.end()) return it->second;
  // Against ATen on a generator of its own (the global one is not touched), over a few engine blocks.
  at::Generator gen = at::detail::createCPUGenerator(20261202);
  at::mt19937 engine = gen.get<at::CPUGeneratorImpl>()->engine();
  at::Tensor want = at::empty({4099}, at::kFloat);
  want.bernoulli_(1 - p, gen);
  want.div_(1 - p);
  at::Tensor got = at::empty({4099}, at::kFloat);
  drawFast(got.data_ptr<float>(), got.numel(), p, engine);
  bool same = at::equal(got, want) && engine() == gen.get<at::CPUGeneratorImpl>()->engine()();
  known[p] = same;
  return same;
}

void drawDropoutMask(at::Tensor& mask, double p) {
  if (mask.scalar_type() == at::kFloat && mask.is_cpu() && mask.is_contiguous() && fastDropoutMask(p)) {
    at::Generator gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    auto* impl = gen.get<at::CPUGeneratorImpl>();
    at::mt19937 engine = impl->engine();
    drawFast(mask.data_ptr<float>(), mask.numel(), p, engine);
    impl->set_engine(engine);
    return;
  }
  mask.bernoulli_(1 - p);
  mask.div_(1 - p);
}

}  // namespace ltg
