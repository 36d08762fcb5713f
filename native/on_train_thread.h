// Runs LibTorch work from a JS thread on the process's training thread (train_thread.h), carrying the
// caller's intra-op thread count, flush-denormal mode and autocast settings (torch.autocast), with the
// grad mode given. Then only one thread of the process ever runs parallel work: libgomp keeps a team
// per thread that runs parallel regions, and more team threads than cores throttle its spin-waiting
// (two computing threads made every fused step ~2x slower here).
#pragma once
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <napi.h>

#include <string>

#include "autocast.h"
#include "errors.h"
#include "fp_mode.h"
#include "train_thread.h"

namespace ltg {

// fn's result (fn runs on the training thread); a JS error naming `who` while an epoch holds the thread,
// since waiting would block the event loop until it ends.
template <typename F>
auto onTrainThread(Napi::Env env, const std::string& who, bool grad, F&& fn) -> decltype(fn()) {
  int threads = at::get_num_threads();
  ThreadAutocast autocast = ThreadAutocast::current();
  decltype(fn()) out;
  bool ran = runOnTrainThread([&] {
    c10::AutoGradMode mode(grad);
    ThreadAutocastScope mixed(autocast);
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    applyFlushDenormal();
    out = fn();
  });
  if (!ran)
    throwError(env, who +
                        ": the training thread is running a trainEpoch (of a GanStep); await it (or abort it) first, "
                        "since waiting here would block the event loop until it ends");
  return out;
}

// Whether this JS thread's ATen operator calls (NativeOp.call) run on the training thread
// (torch.onTrainingThread in the facade); per JS thread, off by default.
bool opsOnTrainThread();
bool setOpsOnTrainThread(bool on);  // returns the previous setting

}  // namespace ltg
