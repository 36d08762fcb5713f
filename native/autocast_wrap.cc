// N-API glue of autocast.h for the facade's torch.autocast (ts/tensor/autocast.ts): enter sets this JS
// thread's autocast for a device type and returns what it replaced; exit restores it. Ops run on the
// training thread (torch.onTrainingThread) take the JS thread's setting along (on_train_thread.h).
#include <utility>

#include "autocast.h"
#include "bindings.h"
#include "errors.h"
#include "js_args.h"

namespace ltg {

namespace {

constexpr js::Choice<c10::DeviceType> kAutocastDevices[] = {{"cpu", c10::kCPU}, {"cuda", c10::kCUDA}};
c10::DeviceType autocastDevice(const js::Value& v) { return v.oneOf(kAutocastDevices); }

// The (deviceType, enabled, dtype) arguments both calls take.
std::pair<c10::DeviceType, AutocastSetting> readSetting(const Napi::CallbackInfo& info, const char* who) {
  js::Args args(info, who);
  return {autocastDevice(args(0, "deviceType")), AutocastSetting{args(1, "enabled").boolean(), args(2, "dtype").dtype()}};
}

// autocastEnter(deviceType, enabled, dtype) -> [enabled, dtype] it replaced, as torch.autocast's __enter__
Napi::Value AutocastEnter(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto [type, setting] = readSetting(info, "autocastEnter");
    AutocastSetting prev = autocastEnter(type, setting);
    Napi::Array out = Napi::Array::New(env, 2);
    out.Set(0u, Napi::Boolean::New(env, prev.enabled));
    out.Set(1u, Napi::String::New(env, js::dtypeName(prev.dtype)));
    return out;
  });
}

// autocastExit(deviceType, enabled, dtype): restores what enter returned (autocast.h's autocastExit).
Napi::Value AutocastExit(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto [type, prev] = readSetting(info, "autocastExit");
    autocastExit(type, prev);
    return env.Undefined();
  });
}

Napi::Value IsAutocastEnabled(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    return Napi::Boolean::New(env, AutocastSetting::of(autocastDevice(js::Args(info, "isAutocastEnabled")(0, "deviceType"))).enabled);
  });
}

}  // namespace

void InitAutocast(Napi::Env env, Napi::Object exports) {
  exports.Set("autocastEnter", Napi::Function::New<AutocastEnter>(env, "autocastEnter"));
  exports.Set("autocastExit", Napi::Function::New<AutocastExit>(env, "autocastExit"));
  exports.Set("isAutocastEnabled", Napi::Function::New<IsAutocastEnabled>(env, "isAutocastEnabled"));
}

}  // namespace ltg
