// N-API module entry: registers each wrapped concept. Glue only; it never includes LibTorch.
#include <napi.h>

#include "bindings.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ltg::InitTensorModule(env, exports);
  ltg::InitOps(env, exports);
  ltg::InitRuntime(env, exports);
  ltg::InitOptim(env, exports);
  ltg::InitGan(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(libtorch_gan, Init)
