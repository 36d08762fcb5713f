// N-API glue of diff_augment.h: diffAugment(x, policy) -> the augmented batch, for the facade's
// diffAugment (ts/gan/recipes/diff-augment.ts), which checks its arguments first and permutes
// channels-last batches itself.
#include <c10/core/GradMode.h>

#include "bindings.h"
#include "diff_augment.h"
#include "epoch_lock.h"
#include "errors.h"
#include "js_args.h"
#include "on_train_thread.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

Napi::Value DiffAugment(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args args(info, "diffAugment");
    const at::Tensor& x = args(0, "x").tensor();
    // Parsed before anything is drawn: an unknown name leaves the generator where it was.
    std::vector<DiffAugmentPolicy> policies = parseDiffAugmentPolicy(args(1, "policy").string());
    // It draws from x's device's default generator, which a running epoch may own (epoch_lock.h), as ops.cc refuses.
    if (!policies.empty() && isGeneratorLocked(x.device()))
      throwError(env, inUseMessage("diffAugment", generatorSubject(x.device()).c_str()));
    // Inside torch.onTrainingThread it runs there, as every NativeOp call does, with the caller's grad mode.
    auto run = [&] { return diffAugment(x, policies); };
    at::Tensor y = opsOnTrainThread() ? onTrainThread(env, "diffAugment", c10::GradMode::is_enabled(), run) : run();
    return TensorWrap::New(env, y);
  });
}

}  // namespace

void InitDiffAugment(Napi::Env env, Napi::Object exports) {
  exports.Set("diffAugment", Napi::Function::New<DiffAugment>(env, "diffAugment"));
}

}  // namespace ltg
