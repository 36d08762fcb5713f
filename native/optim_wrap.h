#pragma once
#include <napi.h>

#include <memory>

#include "js_args.h"
#include "optim.h"

namespace ltg {
// The optimizer behind a NativeAdam/NativeSGD handle (shared: the fused step keeps it alive).
std::shared_ptr<Optimizer> optimizerFromJs(const js::Value& v);
}  // namespace ltg
