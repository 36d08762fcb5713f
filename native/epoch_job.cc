#include "epoch_job.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "fp_mode.h"
#include "tensor_wrap.h"
#include "train_thread.h"

namespace ltg {

namespace {
// How long the end of an environment (a Worker's terminate or exit) or of the process waits for its
// epoch to reach the next step boundary before it goes on without it (a step takes milliseconds).
constexpr auto kStopWait = std::chrono::seconds(10);
}  // namespace

bool EpochJob::jsAlive() {
  std::lock_guard<std::mutex> guard(mu);
  return js;
}

void EpochJob::post(std::function<void(Napi::Env)> fn) {
  std::lock_guard<std::mutex> guard(mu);
  if (js) tsfn.NonBlockingCall([fn = std::move(fn)](Napi::Env env, Napi::Function) { fn(env); });
}

void EpochJob::abandon() {
  std::unique_lock<std::mutex> guard(mu);
  js = false;
  stop = true;
  // A completion already queued will not run now: the lock goes here.
  if (cv.wait_for(guard, kStopWait, [&] { return done; })) lock.reset();
}

Napi::Promise EpochCall::start(Napi::Env env, Napi::Object self, std::shared_ptr<EpochJob> job, Napi::Function onProgress) {
  GanStep& step = *job->step;
  job->owner = this;
  std::vector<at::Tensor> owned = step.ownedTensors();
  owned.push_back(job->data);
  if (job->labels.defined()) owned.push_back(job->labels);
  // With the device's default generator: JS-thread draws from it would change the epoch's noise.
  job->lock =
      std::make_unique<EpochLock>(std::move(owned), std::vector<const void*>{step.optG.get(), step.optD.get(), generatorKey(step.device)});
  std::weak_ptr<EpochJob> weak = job;
  // Its finalizer runs when it is released, or when the environment ends with it still held.
  job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "libtorch-gan:trainEpoch", 0, 1, [weak](Napi::Env) {
    if (auto j = weak.lock()) {
      std::lock_guard<std::mutex> guard(j->mu);
      j->js = false;
    }
  });
  if (!startOnTrainThread([job] { run(job); }, [job] { finish(job); })) {
    job->lock.reset();
    job->tsfn.Release();
    throwError(env,
               "trainEpoch: the training thread is running a trainEpoch of another GanStep (one epoch at a time per process); await "
               "it (or abort it) first");
  }
  // A Worker's end (terminate(), or process.exit() in it) tears its environment down: stop the epoch
  // there. Added after the tsfn, so that it runs before the tsfn's own hook (the newest run first).
  hook_ = env.AddCleanupHook(std::function<void()>([weak] {
    if (auto j = weak.lock()) j->abandon();
  }));
  listenOnExit(env, weak);
  env_ = env;
  deferred_ = Napi::Promise::Deferred::New(env);
  if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  job_ = std::move(job);
  step.busy = true;
  self_ = Napi::Persistent(self);  // keep the NativeGanStep alive until the epoch settles
  return deferred_->Promise();
}

bool EpochCall::requestStop() {
  if (job_) job_->stop = true;
  return job_ != nullptr;
}

void EpochCall::deliverProgress(Napi::Env env, const Progress& p) {
  // After a throwing callback the epoch is ending with that error: no more reports.
  if (onProgress_.IsEmpty() || !job_ || !listenerError_.IsEmpty()) return;
  Napi::HandleScope scope(env);
  auto o = Napi::Object::New(env);
  o.Set("step", double(p.step));
  o.Set("totalSteps", double(p.totalSteps));
  o.Set("dLoss", p.dLoss);
  o.Set("gLoss", p.gLoss);
  o.Set("dReal", p.dReal);
  o.Set("dFake", p.dFake);
  // Raw N-API here: a callback that ends its Worker (process.exit() in it) leaves no JS to build a
  // C++ exception from, and node-addon-api would abort the process trying.
  napi_value arg = o, result;
  if (napi_call_function(env, env.Undefined(), onProgress_.Value(), 1, &arg, &result) == napi_ok) return;
  job_->stop = true;  // the epoch ends at the next step boundary and rejects with the callback's error
  bool pending = false;
  napi_value thrown;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending || napi_get_and_clear_last_exception(env, &thrown) != napi_ok) return;
  if (!job_->jsAlive() || !envCanRunJs(env)) return;
  // Held in an object, so that a thrown primitive (throw 'boom') is kept too.
  Napi::Object holder = Napi::Object::New(env);
  holder.Set("error", Napi::Value(env, thrown));
  listenerError_ = Napi::Persistent(holder);
}

void EpochCall::complete(Napi::Env env) {
  std::shared_ptr<EpochJob> job = std::move(job_);
  job->owner = nullptr;
  {
    std::lock_guard<std::mutex> guard(job->mu);
    job->lock.reset();
  }
  hook_.Remove(env);
  hook_ = {};
  stopListeningOnExit(env);
  job->step->busy = false;
  Napi::Promise::Deferred deferred = *deferred_;
  deferred_.reset();
  onProgress_.Reset();
  Napi::HandleScope scope(env);
  if (!listenerError_.IsEmpty()) {
    Napi::Value err = listenerError_.Value().Get("error");
    listenerError_.Reset();
    deferred.Reject(err);
  } else if (job->error) {
    // With its class (TypeError, RangeError, Error), as guard() would have thrown it on the JS thread.
    Napi::Error err = toJsError(env, *job->error);
    if (job->stop.load()) err.Set("name", Napi::String::New(env, "AbortError"));
    deferred.Reject(err.Value());
  } else if (job->result.aborted) {
    // Rejected as an AbortError that says how far the epoch got, so a caller can checkpoint and resume it exactly.
    const EpochResult& r = job->result;
    Napi::Error err = Napi::Error::New(
        env, "epoch cancelled at step " + std::to_string(job->opt.startStep + r.steps) + " of " + std::to_string(r.totalSteps));
    err.Set("name", Napi::String::New(env, "AbortError"));
    err.Set("completedSteps", double(r.steps));
    if (r.perStep.defined()) err.Set("perStep", TensorWrap::New(env, r.perStep));
    deferred.Reject(err.Value());
  } else {
    const EpochResult& r = job->result;
    auto o = Napi::Object::New(env);
    o.Set("steps", double(r.steps));
    o.Set("images", double(r.images));
    o.Set("dLoss", r.dLoss);
    o.Set("gLoss", r.gLoss);
    o.Set("dReal", r.dReal);
    o.Set("dFake", r.dFake);
    if (r.perStep.defined()) o.Set("perStep", TensorWrap::New(env, r.perStep));
    o.Set("cudaGraph", job->step->graphStatus());
    deferred.Resolve(o);
  }
  self_.Reset();
}

// process.exit() and a fatal exception end the process without tearing the environment down (no
// cleanup hook runs), and nothing waits for the training thread: its epoch would run on into LibTorch's
// static objects as exit() destroys them. The process's 'exit' event, the last JS to run, stops it at
// the next step boundary first. The listener is there only while an epoch is in flight.
void EpochCall::listenOnExit(Napi::Env env, const std::weak_ptr<EpochJob>& weak) {
  Napi::Value process = env.Global().Get("process");
  if (!process.IsObject()) return;
  Napi::Value prepend = process.As<Napi::Object>().Get("prependListener");
  if (!prepend.IsFunction()) return;
  exitListener_ = Napi::Persistent(Napi::Function::New(env, [weak](const Napi::CallbackInfo&) {
    if (auto j = weak.lock()) j->abandon();
  }));
  prepend.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), exitListener_.Value()});
}

void EpochCall::stopListeningOnExit(Napi::Env env) {
  if (exitListener_.IsEmpty()) return;
  Napi::Value process = env.Global().Get("process");
  Napi::Value remove = process.IsObject() ? process.As<Napi::Object>().Get("removeListener") : env.Undefined();
  if (remove.IsFunction()) remove.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), exitListener_.Value()});
  exitListener_.Reset();
}

void EpochCall::run(const std::shared_ptr<EpochJob>& job) {
  try {
    // Grad mode and the intra-op thread count are per thread in LibTorch: set them here.
    c10::AutoGradMode grad(true);
    at::init_num_threads();
    at::set_num_threads(job->threads);
    applyFlushDenormal();
    std::weak_ptr<EpochJob> weak = job;
    job->result = job->step->trainEpoch(job->data, job->labels, job->opt, [&](const Progress& p) {
      job->post([weak, p](Napi::Env env) { onJsThread(weak, [&](EpochCall& c) { c.deliverProgress(env, p); }); });
    }, job->stop);
  } catch (...) {
    job->error = caughtError("trainEpoch");  // becomes the JS error in complete(), on the JS thread
  }
}

void EpochCall::finish(const std::shared_ptr<EpochJob>& job) {
  std::unique_lock<std::mutex> guard(job->mu);
  if (job->js) {
    // The tensors stay locked until the promise settles (complete()), so that the rule a caller sees
    // does not depend on when the last report is delivered.
    std::weak_ptr<EpochJob> weak = job;
    job->tsfn.NonBlockingCall([weak](Napi::Env env, Napi::Function) { onJsThread(weak, [&](EpochCall& c) { c.complete(env); }); });
    job->tsfn.Release();
  } else {
    // Nobody reads the result. Let go of every LibTorch object before `done`: the process may be
    // exiting, destroying LibTorch's static state, as soon as the waiting thread wakes.
    job->lock.reset();
    job->step.reset();
    job->data = at::Tensor();
    job->labels = at::Tensor();
    job->result = EpochResult();
  }
  job->done = true;
  guard.unlock();
  job->cv.notify_all();
}

void EpochCall::onJsThread(const std::weak_ptr<EpochJob>& weak, const std::function<void(EpochCall&)>& fn) {
  auto job = weak.lock();
  if (!job || !job->jsAlive() || !job->owner || !envCanRunJs(job->owner->env_)) return;
  try {
    fn(*job->owner);
  } catch (...) {
  }
}

}  // namespace ltg
