#include "diff_augment.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace ltg {

namespace {

// Index order is the enum's: Color, Translation, Cutout.
const std::vector<std::string> kNames{"color", "translation", "cutout"};

// s as JSON.stringify writes it, so that the native error reads as the facade's (ts/gan/recipes/diff-augment.ts).
// Not named `quoted`: argument-dependent lookup would pick std::quoted for a non-const std::string.
std::string jsonQuoted(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

// Case-insensitive edit distance (names are a few characters).
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = prev[0];
    prev[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t tmp = prev[j];
      bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
      prev[j] = std::min({prev[j] + 1, prev[j - 1] + 1, diag + (same ? 0 : 1)});
      diag = tmp;
    }
  }
  return prev[b.size()];
}

// The known name closest to `word` (trimmed), as ts/util/suggest.ts picks it: within max(2, len/3) edits; "" when none.
std::string suggestName(std::string word) {
  const char* space = " \t\n\r\f\v";
  size_t first = word.find_first_not_of(space);
  word = first == std::string::npos ? "" : word.substr(first, word.find_last_not_of(space) - first + 1);
  const std::string* best = nullptr;
  size_t bestD = 0;
  for (const auto& name : kNames) {
    size_t d = distance(word, name);
    if (!best || d < bestD) best = &name, bestD = d;
  }
  return bestD <= std::max<size_t>(2, word.size() / 3) ? *best : "";
}

// N random values [N, 1, 1, 1] in x's dtype and device, one per image: torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device).
at::Tensor perImage(const at::Tensor& x) { return at::rand({x.size(0), 1, 1, 1}, x.options()); }

at::Tensor randBrightness(const at::Tensor& x) { return x + (perImage(x) - 0.5); }

at::Tensor randSaturation(const at::Tensor& x) {
  at::Tensor xMean = x.mean(1, true);
  return (x - xMean) * (perImage(x) * 2) + xMean;
}

at::Tensor randContrast(const at::Tensor& x) {
  at::Tensor xMean = x.mean({1, 2, 3}, true);
  return (x - xMean) * (perImage(x) + 0.5) + xMean;
}

// Python's int(size * ratio + 0.5) for a size >= 0 (truncation, in double as Python computes it).
int64_t scaled(int64_t size, double ratio) { return static_cast<int64_t>(static_cast<double>(size) * ratio + 0.5); }

// torch.meshgrid(arange(a), arange(b), arange(c)) of int64, 'ij' indexing (the default the authors rely on).
std::vector<at::Tensor> grid(int64_t a, int64_t b, int64_t c, const at::TensorOptions& longs) {
  return at::meshgrid({at::arange(a, longs), at::arange(b, longs), at::arange(c, longs)}, "ij");
}

// torch.randint's dtype when none is given (int64); at::randint's own default would be float.
at::TensorOptions longsOn(const at::Tensor& x) { return at::TensorOptions().dtype(at::kLong).device(x.device()); }

at::Tensor randTranslation(const at::Tensor& x, double ratio = 0.125) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t shiftX = scaled(h, ratio), shiftY = scaled(w, ratio);
  const at::TensorOptions longs = longsOn(x);
  // Two statements: the draws' order is the authors' (x, then y).
  at::Tensor translationX = at::randint(-shiftX, shiftX + 1, {n, 1, 1}, longs);
  at::Tensor translationY = at::randint(-shiftY, shiftY + 1, {n, 1, 1}, longs);
  std::vector<at::Tensor> g = grid(n, h, w, longs);
  at::Tensor gridX = at::clamp(g[1] + translationX + 1, 0, h + 1);
  at::Tensor gridY = at::clamp(g[2] + translationY + 1, 0, w + 1);
  // F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0]) in constant mode: one zero row and column on every side.
  at::Tensor xPad = at::constant_pad_nd(x, {1, 1, 1, 1, 0, 0, 0, 0}, 0);
  // x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y]: advanced indexing is aten::index,
  // whose backward scatters the gradient back (index_put_ accumulating).
  at::Tensor gathered = at::index(xPad.permute({0, 2, 3, 1}).contiguous(), c10::List<std::optional<at::Tensor>>({g[0], gridX, gridY}));
  return gathered.permute({0, 3, 1, 2}).contiguous();
}

at::Tensor randCutout(const at::Tensor& x, double ratio = 0.5) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  const int64_t cutX = scaled(h, ratio), cutY = scaled(w, ratio);
  const at::TensorOptions longs = longsOn(x);
  at::Tensor offsetX = at::randint(0, h + (1 - cutX % 2), {n, 1, 1}, longs);
  at::Tensor offsetY = at::randint(0, w + (1 - cutY % 2), {n, 1, 1}, longs);
  std::vector<at::Tensor> g = grid(n, cutX, cutY, longs);
  // cutX / 2 is Python's cutout_size[0] // 2: both are >= 0.
  at::Tensor gridX = at::clamp(g[1] + offsetX - cutX / 2, 0, h - 1);
  at::Tensor gridY = at::clamp(g[2] + offsetY - cutY / 2, 0, w - 1);
  at::Tensor mask = at::ones({n, h, w}, x.options());
  // `mask[grid_batch, grid_x, grid_y] = 0` as Python runs it: index_put_ of a 0-dim zero, not accumulating.
  // The mask is made here, not from x, so writing it in place leaves x's graph alone.
  mask.index_put_(c10::List<std::optional<at::Tensor>>({g[0], gridX, gridY}), at::zeros({}, x.options()));
  return x * mask.unsqueeze(1);
}

}  // namespace

const std::vector<std::string>& diffAugmentPolicyNames() { return kNames; }

const std::string& diffAugmentPolicyName(DiffAugmentPolicy p) { return kNames.at(static_cast<size_t>(p)); }

std::vector<DiffAugmentPolicy> parseDiffAugmentPolicy(const std::string& policy, const std::string& what) {
  std::vector<DiffAugmentPolicy> out;
  if (policy.empty()) return out;
  // Python's policy.split(','): every comma splits, so "a,,b" holds an empty name (refused below).
  size_t start = 0;
  while (true) {
    size_t end = policy.find(',', start);
    std::string name = policy.substr(start, end == std::string::npos ? std::string::npos : end - start);
    auto it = std::find(kNames.begin(), kNames.end(), name);
    if (it == kNames.end()) {
      std::string hint = suggestName(name), known;
      for (const auto& k : kNames) known += (known.empty() ? "" : ", ") + k;
      TORCH_CHECK_TYPE(false, what, ": unknown policy ", jsonQuoted(name), hint.empty() ? "" : " (did you mean '" + hint + "'?)", " in ",
                       jsonQuoted(policy), "; known: ", known);
    }
    out.push_back(static_cast<DiffAugmentPolicy>(it - kNames.begin()));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}

at::Tensor diffAugment(const at::Tensor& x, const std::vector<DiffAugmentPolicy>& policies) {
  TORCH_CHECK(x.defined(), "diffAugment: x is an undefined tensor");
  TORCH_CHECK(x.dim() == 4, "diffAugment: x must be a batch of images [N, C, H, W], got shape ", x.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "diffAugment: x must be a floating-point tensor, got dtype ",
                   c10::getDtypeNames(x.scalar_type()).first);
  // The authors return x itself for an empty policy (no contiguous() either).
  if (policies.empty()) return x;
  at::Tensor y = x;
  for (DiffAugmentPolicy p : policies) {
    switch (p) {
      case DiffAugmentPolicy::Color:
        y = randBrightness(y);
        y = randSaturation(y);
        y = randContrast(y);
        break;
      case DiffAugmentPolicy::Translation: y = randTranslation(y); break;
      case DiffAugmentPolicy::Cutout: y = randCutout(y); break;
    }
  }
  return y.contiguous();
}

}  // namespace ltg
