#include "bindings.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/GradMode.h>

#include <limits>

#include "cuda_status.h"
#include "dist.h"
#include "epoch_lock.h"
#include "errors.h"
#include "fp_mode.h"
#include "js_args.h"
#include "step_graph.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

// The default generator of a device argument ('cpu' when undefined), refused while an epoch draws from
// it (`who` names the caller).
at::Generator generatorFor(const js::Value& device, const char* who) {
  c10::Device dev = device.isUndefined() ? c10::Device(c10::kCPU) : device.device();
  // 'cuda' is the current device, as torch.cuda.get_rng_state(): an NCCL rank's own GPU (dist.h).
  if (!dev.is_cpu() && !dev.has_index()) dev = c10::Device(c10::kCUDA, c10::DeviceIndex(at::detail::getCUDAHooks().getCurrentDevice()));
  if (isGeneratorLocked(dev)) throwError(device.env(), inUseMessage(who, generatorSubject(dev).c_str()));
  if (dev.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(dev);
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    uint64_t seed = uint64_t(js::Args(info, "manualSeed")(0, "seed").integer());
    // It seeds every device's generator: none may be one a running epoch draws from (checked before any is seeded).
    std::vector<c10::Device> devices{c10::Device(c10::kCPU)};
    for (int i = 0; i < cudaDeviceCount(); ++i) devices.emplace_back(c10::kCUDA, c10::DeviceIndex(i));
    for (const auto& d : devices)
      if (isGeneratorLocked(d)) throwError(env, inUseMessage("manualSeed", generatorSubject(d).c_str()));
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
    for (int i = 0; i < cudaDeviceCount(); ++i) {
      auto gen = at::globalContext().defaultGenerator(c10::Device(c10::kCUDA, c10::DeviceIndex(i)));
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_current_seed(seed);
    }
    return env.Undefined();
  });
}

// getRngState(device = 'cpu') -> uint8 tensor, as torch.get_rng_state()
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto gen = generatorFor(js::Args(info, "getRngState")(0, "device"), "getRngState");
    std::lock_guard<std::mutex> lock(gen.mutex());
    return TensorWrap::New(env, gen.get_state());
  });
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args args(info, "setRngState");
    const at::Tensor& state = args(0, "state").tensor();
    auto gen = generatorFor(args(1, "device"), "setRngState");
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return env.Undefined();
  });
}

// Grad mode is thread-local in LibTorch; this sets the main thread's. Workers set their own.
Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    bool on = js::Args(info, "setGradEnabled")(0, "enabled").boolean();
    bool prev = c10::GradMode::is_enabled();
    c10::GradMode::set_enabled(on);
    return Napi::Boolean::New(info.Env(), prev);
  });
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled()); }

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    at::set_num_threads(int(js::Args(info, "setNumThreads")(0, "n").integer({1, std::numeric_limits<int>::max()})));
    return env.Undefined();
  });
}

// setFlushDenormal(on) -> supported, as torch.set_flush_denormal
Napi::Value SetFlushDenormal(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), setFlushDenormal(js::Args(info, "setFlushDenormal")(0, "on").boolean()));
  });
}
Napi::Value GetFlushDenormal(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), flushDenormal()); }

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), at::get_num_threads()); }

Napi::Value CudaIsAvailable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), cudaDeviceCount() > 0); }

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), cudaDeviceCount()); }

// cudaSynchronize(device?) as torch.cuda.synchronize(device): waits for all work on one CUDA device,
// `device` ('cuda:N', 'cuda' or an index N) or, when undefined, this thread's current device.
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Value arg = js::Args(info, "cuda.synchronize")(0, "device");
    c10::Device device(c10::kCUDA);
    if (arg.raw().IsNumber() || arg.raw().IsBigInt()) {
      device = c10::Device(c10::kCUDA, c10::DeviceIndex(arg.integer({0, std::numeric_limits<c10::DeviceIndex>::max()})));
    } else if (!arg.isUndefined()) {
      if (!arg.raw().IsString() || arg.string().rfind("cuda", 0) != 0) arg.fail("a CUDA device ('cuda', 'cuda:N' or an index N)");
      device = arg.device();
    }
    // The same message as any other use of a CUDA device this machine cannot use (no silent no-op).
    std::string why = deviceUnusableReason(device);
    if (!why.empty()) throwError(env, "cuda.synchronize: " + why);
    auto& hooks = at::detail::getCUDAHooks();
    hooks.deviceSynchronize(device.has_index() ? device.index() : hooks.getCurrentDevice());
    return env.Undefined();
  });
}

std::string configValue(const std::string& config, const std::string& key) {
  auto pos = config.find(key + "=");
  if (pos == std::string::npos) return "";
  pos += key.size() + 1;
  auto end = config.find_first_of(", \n", pos);
  return config.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto o = Napi::Object::New(env);
    o.Set("builtWith", LTG_LIBTORCH_VERSION);
    o.Set("cudaBuild", bool(LTG_CUDA_BUILD));
    o.Set("cudaGraphs", cudaGraphsCompiled());
    int n = cudaDeviceCount();
    o.Set("cudaAvailable", n > 0);
    o.Set("cudaDeviceCount", n);
    o.Set("cudaUnavailable", cudaUnavailableReason());
    auto names = Napi::Array::New(env);
    auto list = cudaDeviceNames(n);
    for (size_t i = 0; i < list.size(); ++i) names.Set(uint32_t(i), list[i]);
    o.Set("cudaDevices", names);
    // backend 'nccl' (dist.h): whether this binary and LibTorch have it (a GPU is cudaAvailable's matter),
    // its version, and otherwise what is missing.
    std::string ncclWhy = ncclMissing();
    o.Set("ncclAvailable", ncclWhy.empty());
    o.Set("ncclVersion", ncclWhy.empty() ? Napi::Value(Napi::String::New(env, ncclVersion())) : env.Null());
    o.Set("ncclMissing", ncclWhy);
    o.Set("numThreads", at::get_num_threads());
    o.Set("numInteropThreads", at::get_num_interop_threads());
    std::string config = at::show_config();
    std::string blas = configValue(config, "BLAS_INFO");
    o.Set("blas", blas.empty() ? "unknown" : blas);
    o.Set("parallelInfo", at::get_parallel_info());
    o.Set("config", config);
    return o;
  });
}

}  // namespace

void InitRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("manualSeed", Napi::Function::New<ManualSeed>(env));
  exports.Set("getRngState", Napi::Function::New<GetRngState>(env));
  exports.Set("setRngState", Napi::Function::New<SetRngState>(env));
  exports.Set("setGradEnabled", Napi::Function::New<SetGradEnabled>(env));
  exports.Set("isGradEnabled", Napi::Function::New<IsGradEnabled>(env));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreads>(env));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreads>(env));
  exports.Set("setFlushDenormal", Napi::Function::New<SetFlushDenormal>(env));
  exports.Set("getFlushDenormal", Napi::Function::New<GetFlushDenormal>(env));
  exports.Set("cudaIsAvailable", Napi::Function::New<CudaIsAvailable>(env));
  exports.Set("cudaDeviceCount", Napi::Function::New<CudaDeviceCount>(env));
  exports.Set("cudaSynchronize", Napi::Function::New<CudaSynchronize>(env));
  exports.Set("info", Napi::Function::New<Info>(env));
}

}  // namespace ltg
