// What other wrappers need of dist_wrap.cc: the process group behind a JS NativeDistGroup.
#pragma once
#include <memory>

#include "dist.h"
#include "js_args.h"

namespace ltg {
// The live group of a NativeDistGroup argument (TypeError for anything else, Error once destroyed).
std::shared_ptr<DistGroup> distGroupFrom(const js::Value& v);
}  // namespace ltg
