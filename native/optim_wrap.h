#pragma once
#include <napi.h>

#include <memory>

#include "optim.h"

namespace ltg {
// The optimizer behind a NativeAdam/NativeSGD handle (shared: the fused step keeps it alive).
std::shared_ptr<Optimizer> optimizerFromJs(Napi::Env env, const Napi::Value& v, const char* what);
}
