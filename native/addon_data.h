// Per-environment constructors, so that handles can be type-checked (InstanceOf) before unwrapping:
// unwrapping a handle of another class would be undefined behaviour.
#pragma once
#include <napi.h>

namespace at {
class Tensor;
}

namespace ltg {

struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::ObjectReference disposedTensor;  // answers the calls of disposed tensors (TensorWrap::Unwrap)
  // The live tensor of a tensor handle (one InstanceOf tensorCtor), throwing once it is disposed. Set by
  // TensorWrap::Init, so that js_args reads tensors without depending on tensor_wrap (which uses js_args).
  const at::Tensor& (*liveTensor)(const Napi::Object& handle) = nullptr;
  Napi::FunctionReference opCtor;
  Napi::FunctionReference adamCtor;
  Napi::FunctionReference sgdCtor;
  Napi::FunctionReference ganStepCtor;
  Napi::FunctionReference distGroupCtor;
};

inline AddonData& addonData(Napi::Env env) {
  auto* d = env.GetInstanceData<AddonData>();
  if (!d) {
    d = new AddonData();  // owned by the env: freed by the finalizer SetInstanceData installs
    env.SetInstanceData<AddonData>(d);
  }
  return *d;
}

}  // namespace ltg
