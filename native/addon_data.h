// Per-environment constructors, so that handles can be type-checked (InstanceOf) before unwrapping:
// unwrapping a handle of another class would be undefined behaviour.
#pragma once
#include <napi.h>

namespace ltg {

struct AddonData {
  Napi::FunctionReference tensorCtor;
  Napi::ObjectReference disposedTensor;  // answers the calls of disposed tensors (TensorWrap::Unwrap)
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
