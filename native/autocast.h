// Mixed precision as torch.autocast: LibTorch's own autocast (its Autocast dispatch keys and op lists)
// switched on for a scope of the calling thread. The fused step runs its forward passes and losses in
// such a scope and its backward passes and updates outside it (fp32 master weights, as a script using
// `with torch.autocast(...)` around the forward does); torch.autocast in the facade sets it on the JS
// thread, and hand-offs to the training thread carry it (on_train_thread.h).
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <string>

namespace ltg {

// The fused step's precision: fp32 (autocast off), or autocast to bf16 / fp16 ('auto' is resolved in TypeScript).
enum class Precision { Fp32, Bf16, Fp16 };
std::string precisionName(Precision p);
// Empty when `p` can run on `device`; else why not (fp16 on the CPU; bf16 on a GPU before Ampere).
std::string precisionUnsupportedReason(Precision p, const c10::Device& device);

// One device type's autocast setting of the calling thread.
struct AutocastSetting {
  bool enabled = false;
  c10::ScalarType dtype = c10::kBFloat16;
  static AutocastSetting of(c10::DeviceType type);
};

// torch.autocast's __enter__ and __exit__ on the calling thread: enter sets `setting` for `type` and
// returns the one it replaced; exit restores that one, and the outermost exit (nesting back to 0) clears
// the cache of casted weights, so an update after it never meets stale casts.
AutocastSetting autocastEnter(c10::DeviceType type, AutocastSetting setting);
void autocastExit(c10::DeviceType type, AutocastSetting prev);

// As `with torch.autocast(device_type, dtype=..., enabled=...)`: sets the calling thread's autocast for
// `type` until destroyed, then restores it (autocastEnter / autocastExit); scopes nest.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType type, AutocastSetting setting);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType type_;
  AutocastSetting prev_;
};

// The step's scope for `precision` on `device`: autocast on to its dtype, or nothing for fp32.
std::optional<AutocastScope> autocastFor(Precision precision, const c10::Device& device);
// A pause inside the step's scope (backward passes and autograd.grad run outside autocast): autocast off
// for `device` where it is on, else nothing.
std::optional<AutocastScope> autocastPaused(const c10::Device& device);

// The JS thread's CPU and CUDA settings, to be applied on the training thread for one hand-off.
struct ThreadAutocast {
  AutocastSetting cpu, cuda;
  static ThreadAutocast current();
};
class ThreadAutocastScope {
 public:
  explicit ThreadAutocastScope(const ThreadAutocast& t);

 private:
  std::optional<AutocastScope> cpu_, cuda_;
};

}  // namespace ltg
