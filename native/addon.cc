// N-API module entry: registers each wrapped concept. Glue only; it never includes LibTorch.
#include <dlfcn.h>
#include <napi.h>

#include "bindings.h"

namespace {

// Node unloads an addon with the environment that loaded it, but the training thread (one per
// process, train_thread.h) outlives any one environment and runs our code: a Worker that alone loaded
// the addon would unmap that code under it as it ends. Loaded once more with RTLD_NODELETE, this
// library stays mapped (and its one training thread stays the process's) until the process ends.
void pinThisLibrary() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&pinThisLibrary), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  pinThisLibrary();
  ltg::InitTensorModule(env, exports);
  ltg::InitOps(env, exports);
  ltg::InitRuntime(env, exports);
  ltg::InitOptim(env, exports);
  ltg::InitGan(env, exports);
  ltg::InitDist(env, exports);
  ltg::InitTorchSave(env, exports);
  ltg::InitAutograd(env, exports);
  ltg::InitDiffAugment(env, exports);
  ltg::InitAutocast(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(libtorch_gan, Init)
