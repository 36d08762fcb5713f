// One NativeGanStep.trainEpoch in flight, beside GanStep (as node-llama-cpp keeps each worker beside its
// class). The epoch runs on the training thread (train_thread.h); its progress reports and its outcome
// come back through a thread-safe function, so no libuv worker waits on it (process exit would wait for
// that worker). A Worker's end (terminate(), process.exit() in it) and the process's exit stop it at
// the next step boundary.
#pragma once
#include <ATen/core/Tensor.h>
#include <napi.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "epoch_lock.h"
#include "errors.h"
#include "gan_step.h"

namespace ltg {

class EpochCall;

// What the JS thread, the training thread and the environment's cleanup hook share. It holds no JS
// values (those are EpochCall's, on the JS thread): the training thread may drop it last.
struct EpochJob {
  std::shared_ptr<GanStep> step;
  at::Tensor data, labels;  // our own references: disposing the JS handles mid-epoch cannot free them under us
  EpochOptions opt;
  int threads = 1;
  EpochCall* owner = nullptr;  // used on the JS thread only, alive until the epoch settles
  std::atomic<bool> stop{false};
  std::unique_ptr<EpochLock> lock;  // from trainEpoch() until the promise settles (or JS goes away); under mu
  EpochResult result;               // written by the training thread before `done`
  std::optional<CaughtError> error;

  // Calls into JS go through tsfn while `js` holds; the environment's end (its cleanup hook, or the
  // tsfn's finalizer) and the process's exit clear it, and from then on nothing may call tsfn. mu orders
  // each call against that.
  std::mutex mu;
  std::condition_variable cv;
  Napi::ThreadSafeFunction tsfn;
  bool js = true;
  bool done = false;

  bool jsAlive();
  // Training thread: queues fn(env) on the JS thread, unless JS is gone.
  void post(std::function<void(Napi::Env)> fn);
  // JS goes away: the epoch stops at its next step boundary and never calls back. Waits (bounded) for
  // the training thread to let go of it.
  void abandon();
};

// trainEpoch's JS side (JS thread only): the promise, the progress callback, the cleanup hook and the
// process's 'exit' listener of the epoch in flight, if any.
class EpochCall {
 public:
  // Locks what the epoch owns, starts it on the training thread and returns its promise; `self` (the
  // NativeGanStep) is kept alive until it settles. Throws a JS Error, starting nothing, while the
  // training thread runs another GanStep's epoch.
  Napi::Promise start(Napi::Env env, Napi::Object self, std::shared_ptr<EpochJob> job, Napi::Function onProgress);
  // Asks the epoch in flight to stop at its next step boundary; false when there is none.
  bool requestStop();

 private:
  // A progress report of the epoch in flight; then its end, which settles the promise.
  void deliverProgress(Napi::Env env, const Progress& p);
  void complete(Napi::Env env);
  void listenOnExit(Napi::Env env, const std::weak_ptr<EpochJob>& weak);
  void stopListeningOnExit(Napi::Env env);
  // The training thread's part of one epoch, and what it does once the thread is free again.
  static void run(const std::shared_ptr<EpochJob>& job);
  static void finish(const std::shared_ptr<EpochJob>& job);
  // A callback queued by the training thread, on the JS thread: nothing once the environment is going
  // away, and nothing thrown out of it (there is no JS caller to take an exception).
  static void onJsThread(const std::weak_ptr<EpochJob>& weak, const std::function<void(EpochCall&)>& fn);

  std::shared_ptr<EpochJob> job_;
  Napi::Env env_ = nullptr;
  Napi::ObjectReference self_;  // the NativeGanStep, kept alive until the epoch settles
  std::optional<Napi::Promise::Deferred> deferred_;
  Napi::FunctionReference onProgress_;
  Napi::ObjectReference listenerError_;  // { error }: what onProgress threw; the epoch rejects with it
  Napi::Env::CleanupHook<std::function<void()>> hook_;
  Napi::FunctionReference exitListener_;  // on the process's 'exit' event
};

}  // namespace ltg
