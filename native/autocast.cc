#include "autocast.h"

#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>

#include "cuda_status.h"

namespace ltg {

std::string precisionName(Precision p) {
  switch (p) {
    case Precision::Bf16: return "bf16";
    case Precision::Fp16: return "fp16";
    case Precision::Fp32: break;
  }
  return "fp32";
}

std::string precisionUnsupportedReason(Precision p, const c10::Device& device) {
  if (p == Precision::Fp16 && device.is_cpu())
    return "precision 'fp16' needs a CUDA device (on the CPU, autocast's fp16 kernels are slow and it has no gradient scaler); use "
           "'bf16' or 'fp32'";
  if (p == Precision::Bf16 && device.is_cuda()) {
    int major = cudaComputeCapabilityMajor(device.has_index() ? device.index() : 0);
    if (major > 0 && major < 8)
      return "precision 'bf16' needs a GPU of compute capability 8.0 or later (bf16 tensor cores); " + device.str() + " has " +
             std::to_string(major) + ".x: use 'fp16' or 'fp32'";
  }
  return "";
}

AutocastSetting AutocastSetting::of(c10::DeviceType type) {
  return {at::autocast::is_autocast_enabled(type), at::autocast::get_autocast_dtype(type)};
}

AutocastSetting autocastEnter(c10::DeviceType type, AutocastSetting setting) {
  AutocastSetting prev = AutocastSetting::of(type);
  at::autocast::set_autocast_enabled(type, setting.enabled);
  at::autocast::set_autocast_dtype(type, setting.dtype);
  at::autocast::increment_nesting();
  return prev;
}

void autocastExit(c10::DeviceType type, AutocastSetting prev) {
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type, prev.enabled);
  at::autocast::set_autocast_dtype(type, prev.dtype);
}

AutocastScope::AutocastScope(c10::DeviceType type, AutocastSetting setting) : type_(type), prev_(autocastEnter(type, setting)) {}

AutocastScope::~AutocastScope() { autocastExit(type_, prev_); }

// Both return a prvalue: a scope is neither copied nor moved (it restores the thread's setting once).
std::optional<AutocastScope> autocastFor(Precision precision, const c10::Device& device) {
  if (precision == Precision::Fp32) return std::nullopt;
  return std::optional<AutocastScope>(std::in_place, device.type(),
                                      AutocastSetting{true, precision == Precision::Bf16 ? c10::kBFloat16 : c10::kHalf});
}

std::optional<AutocastScope> autocastPaused(const c10::Device& device) {
  AutocastSetting now = AutocastSetting::of(device.type());
  if (!now.enabled) return std::nullopt;
  return std::optional<AutocastScope>(std::in_place, device.type(), AutocastSetting{false, now.dtype});
}

ThreadAutocast ThreadAutocast::current() { return {AutocastSetting::of(c10::kCPU), AutocastSetting::of(c10::kCUDA)}; }

ThreadAutocastScope::ThreadAutocastScope(const ThreadAutocast& t) {
  if (t.cpu.enabled) cpu_.emplace(c10::kCPU, t.cpu);
  if (t.cuda.enabled) cuda_.emplace(c10::kCUDA, t.cuda);
}

}  // namespace ltg
