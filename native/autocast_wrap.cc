// N-API glue of autocast.h for the facade's torch.autocast (ts/tensor/autocast.ts): enter sets this JS
// thread's autocast for a device type and returns what it replaced; exit restores it. Ops run on the
// training thread (torch.onTrainingThread) take the JS thread's setting along (on_train_thread.h).
#include <ATen/autocast_mode.h>

#include "bindings.h"
#include "errors.h"
#include "js_args.h"

namespace ltg {

namespace {

constexpr js::Choice<c10::DeviceType> kAutocastDevices[] = {{"cpu", c10::kCPU}, {"cuda", c10::kCUDA}};
c10::DeviceType autocastDevice(const js::Value& v) { return v.oneOf(kAutocastDevices); }

// The (deviceType, enabled, dtype) arguments both calls take.
struct Setting {
  c10::DeviceType type;
  bool enabled;
  c10::ScalarType dtype;
};
Setting readSetting(const Napi::CallbackInfo& info, const char* who) {
  js::Args args(info, who);
  return {autocastDevice(args(0, "deviceType")), args(1, "enabled").boolean(), args(2, "dtype").dtype()};
}

// autocastEnter(deviceType, enabled, dtype) -> [enabled, dtype] it replaced, as torch.autocast's __enter__
Napi::Value AutocastEnter(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Setting s = readSetting(info, "autocastEnter");
    Napi::Array prev = Napi::Array::New(env, 2);
    prev.Set(0u, Napi::Boolean::New(env, at::autocast::is_autocast_enabled(s.type)));
    prev.Set(1u, Napi::String::New(env, js::dtypeName(at::autocast::get_autocast_dtype(s.type))));
    at::autocast::set_autocast_enabled(s.type, s.enabled);
    at::autocast::set_autocast_dtype(s.type, s.dtype);
    at::autocast::increment_nesting();
    return prev;
  });
}

// autocastExit(deviceType, enabled, dtype): restores what enter returned; the outermost exit clears the
// cache of casted weights (torch.autocast's __exit__).
Napi::Value AutocastExit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Setting s = readSetting(info, "autocastExit");
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(s.type, s.enabled);
    at::autocast::set_autocast_dtype(s.type, s.dtype);
    return env.Undefined();
  });
}

Napi::Value IsAutocastEnabled(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    return Napi::Boolean::New(env, at::autocast::is_autocast_enabled(autocastDevice(js::Args(info, "isAutocastEnabled")(0, "deviceType"))));
  });
}

}  // namespace

void InitAutocast(Napi::Env env, Napi::Object exports) {
  exports.Set("autocastEnter", Napi::Function::New<AutocastEnter>(env, "autocastEnter"));
  exports.Set("autocastExit", Napi::Function::New<AutocastExit>(env, "autocastExit"));
  exports.Set("isAutocastEnabled", Napi::Function::New<IsAutocastEnabled>(env, "isAutocastEnabled"));
}

}  // namespace ltg
