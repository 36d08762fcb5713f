// N-API side of the fused GAN step: NativeGanStep, and trainEpoch on the training thread.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "addon_data.h"
#include "bindings.h"
#include "dist_wrap.h"
#include "epoch_lock.h"
#include "errors.h"
#include "fp_mode.h"
#include "gan_step.h"
#include "js_args.h"
#include "on_train_thread.h"
#include "optim_wrap.h"
#include "tensor_wrap.h"
#include "train_thread.h"

namespace ltg {

namespace {

// The layer kinds the native executor runs, by the facade's class names (see sequential.h for what a
// new kind touches).
constexpr js::Choice<Layer::Kind> kLayerKinds[] = {
    {"Linear", Layer::Kind::Linear},           {"ReLU", Layer::Kind::ReLU},
    {"LeakyReLU", Layer::Kind::LeakyReLU},     {"Tanh", Layer::Kind::Tanh},
    {"Sigmoid", Layer::Kind::Sigmoid},         {"Dropout", Layer::Kind::Dropout},
    {"BatchNorm1d", Layer::Kind::BatchNorm1d}, {"BatchNorm2d", Layer::Kind::BatchNorm2d},
    {"Flatten", Layer::Kind::Flatten},         {"Unflatten", Layer::Kind::Unflatten},
    {"Conv2d", Layer::Kind::Conv2d},           {"ConvTranspose2d", Layer::Kind::ConvTranspose2d},
};

// An [h, w] pair of a convolution (stride, padding, dilation, outputPadding).
std::vector<int64_t> pairFromJs(const js::Value& v, js::IntRange r) {
  std::vector<int64_t> out = v.integers(r);
  if (out.size() != 2) v.fail("an [h, w] pair of integers");
  return out;
}

// [{ kind, name, ...the fields of that kind }], as ts/nn/from-spec.ts's toNativeLayers writes them.
// Errors name a layer by its state-dict name: "GanStep: generator.0.weight: expected a Tensor, ...".
Sequential layersFromJs(const js::Value& v, const char* which) {
  Sequential seq;
  uint32_t n = v.array().Length();
  for (uint32_t i = 0; i < n; ++i) {
    js::Object entry = v.at(i).object();
    Layer l;
    l.name = std::string(which) + "." + entry["name"].string();
    js::Object f = entry.withPath(l.name);
    l.kind = f["kind"].oneOf(kLayerKinds);
    using K = Layer::Kind;
    switch (l.kind) {
      case K::Linear:
        l.weight = f["weight"].tensor();
        l.bias = f["bias"].tensorOrNone();
        break;
      case K::LeakyReLU: l.slope = f["negativeSlope"].finite(); break;
      case K::Dropout: l.p = f["p"].finite(); break;
      case K::Conv2d:
      case K::ConvTranspose2d:
        l.weight = f["weight"].tensor();
        l.bias = f["bias"].tensorOrNone();
        l.stride = pairFromJs(f["stride"], js::kPositive);
        l.padding = pairFromJs(f["padding"], js::kNonNegative);
        l.dilation = pairFromJs(f["dilation"], js::kPositive);
        if (l.kind == K::ConvTranspose2d) l.outputPadding = pairFromJs(f["outputPadding"], js::kNonNegative);
        l.groups = f["groups"].integer(js::kPositive);
        break;
      case K::BatchNorm1d:
      case K::BatchNorm2d:
        l.weight = f["weight"].tensorOrNone();  // none without affine
        l.bias = f["bias"].tensorOrNone();
        l.runningMean = f["runningMean"].tensorOrNone();
        l.runningVar = f["runningVar"].tensorOrNone();
        l.numBatchesTracked = f["numBatchesTracked"].tensorOrNone();
        l.eps = f["eps"].finite();
        l.momentum = f["momentum"].finite();
        break;
      case K::Flatten:
        l.startDim = f["startDim"].integer();
        l.endDim = f["endDim"].integer();
        break;
      case K::Unflatten:
        l.dim = f["dim"].integer();
        l.sizes = f["sizes"].integers();
        break;
      case K::ReLU:
      case K::Tanh:
      case K::Sigmoid: break;
    }
    seq.layers.push_back(std::move(l));
  }
  return seq;
}

Napi::Object resultToJs(Napi::Env env, const StepValues& r) {
  auto o = Napi::Object::New(env);
  auto put = [&](const char* k, const std::optional<double>& v) {
    if (v) o.Set(k, *v);
  };
  put("dLoss", r.dLoss);
  put("gLoss", r.gLoss);
  put("dReal", r.dReal);
  put("dFake", r.dFake);
  return o;
}

class GanStepWrap;

// Whether JS can still run in env. A Worker that is ending (terminate(), process.exit() in it) still
// runs queued callbacks of its thread-safe functions, but every node-addon-api call that needs JS then
// throws, and building that C++ exception aborts the process. Setting a property is refused exactly
// then, so it is the probe.
bool jsCanRun(napi_env env) {
  napi_value o, v;
  return napi_create_object(env, &o) == napi_ok && napi_get_undefined(env, &v) == napi_ok &&
         napi_set_named_property(env, o, "probe", v) == napi_ok;
}

// How long the end of an environment (a Worker's terminate or exit) or of the process waits for its
// epoch to reach the next step boundary before it goes on without it (a step takes milliseconds).
constexpr auto kStopWait = std::chrono::seconds(10);

// One trainEpoch in flight, shared by the JS thread, the training thread and the environment's cleanup
// hook. It holds no JS values (those stay in GanStepWrap, on the JS thread): the training thread may
// drop it last.
struct EpochJob {
  std::shared_ptr<GanStep> step;
  at::Tensor data, labels;  // our own references: disposing the JS handles mid-epoch cannot free them under us
  EpochOptions opt;
  int threads = 1;
  GanStepWrap* owner = nullptr;  // used on the JS thread only, kept alive by Ref() until the epoch settles
  std::atomic<bool> stop{false};
  std::unique_ptr<EpochLock> lock;  // from trainEpoch() until the promise settles (or JS goes away); under mu
  EpochResult result;               // written by the training thread before `done`
  std::optional<std::string> error;

  // Calls into JS go through tsfn while `js` holds; the environment's end (its cleanup hook, or the
  // tsfn's finalizer) and the process's exit clear it, and from then on nothing may call tsfn. mu orders
  // each call against that.
  std::mutex mu;
  std::condition_variable cv;
  Napi::ThreadSafeFunction tsfn;
  bool js = true;
  bool done = false;

  bool jsAlive() {
    std::lock_guard<std::mutex> lock(mu);
    return js;
  }
  // Training thread: queues fn(env) on the JS thread, unless JS is gone.
  template <typename F>
  void post(F fn) {
    std::lock_guard<std::mutex> lock(mu);
    if (js) tsfn.NonBlockingCall([fn = std::move(fn)](Napi::Env env, Napi::Function) { fn(env); });
  }
  // JS goes away: the epoch stops at its next step boundary and never calls back. Waits (bounded) for
  // the training thread to let go of it.
  void abandon() {
    std::unique_lock<std::mutex> guard(mu);
    js = false;
    stop = true;
    // A completion already queued will not run now: the lock goes here.
    if (cv.wait_for(guard, kStopWait, [&] { return done; })) lock.reset();
  }
};

class GanStepWrap : public Napi::ObjectWrap<GanStepWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = DefineClass(env, "NativeGanStep",
                            {InstanceMethod<&GanStepWrap::Step>("step"), InstanceMethod<&GanStepWrap::StepD>("stepD"),
                             InstanceMethod<&GanStepWrap::StepG>("stepG"), InstanceMethod<&GanStepWrap::SetTraining>("setTraining"),
                             InstanceMethod<&GanStepWrap::TrainEpoch>("trainEpoch"),
                             InstanceMethod<&GanStepWrap::RequestStop>("requestStop"), InstanceMethod<&GanStepWrap::IsBusy>("isBusy"),
                             InstanceMethod<&GanStepWrap::Noise>("noise"), InstanceMethod<&GanStepWrap::DrawLabels>("drawLabels"),
                             InstanceMethod<&GanStepWrap::Generate>("generate"), InstanceMethod<&GanStepWrap::GraphStatus>("graphStatus"),
                             InstanceMethod<&GanStepWrap::IsCapturable>("isCapturable"), InstanceMethod<&GanStepWrap::Path>("path"),
                             InstanceMethod<&GanStepWrap::Profile>("profile"), InstanceMethod<&GanStepWrap::Phases>("phases")});
    addonData(env).ganStepCtor = Napi::Persistent(ctor);
    exports.Set("NativeGanStep", ctor);
  }

  // new NativeGanStep({ g, d, optG, optD, spec, capturable?, cudaGraphs? }): NativeGanStepOptions in ts/native/addon.ts
  explicit GanStepWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GanStepWrap>(info) {
    auto env = info.Env();
    guard(env, [&] {
      js::Object o = js::Args(info, "GanStep")(0, "options").object();
      Sequential g = layersFromJs(o["g"], "generator");
      Sequential d = layersFromJs(o["d"], "discriminator");
      auto optG = optimizerFromJs(o["optG"]);
      auto optD = optimizerFromJs(o["optD"]);
      if (isLocked(optG.get()) || isLocked(optD.get())) throwError(env, inUseMessage("GanStep", "an optimizer"));
      js::Object s = o["spec"].object();
      GanSpec spec;
      spec.logits = s["loss"].oneOf<bool>({{"bceWithLogits", true}, {"bce", false}});
      spec.realLabel = s["realLabel"].finite();
      spec.fakeLabel = s["fakeLabel"].finite();
      spec.dLossMean = s["dLossReduction"].oneOf<bool>({{"sum", false}, {"mean", true}});
      spec.detachFakeForD = s["detachFakeForD"].boolean();
      spec.reuseFakeForG = s["gNoise"].oneOf<bool>({{"fresh", false}, {"reuse", true}});
      spec.separateDBackward = s["separateDBackward"].boolean();
      js::Object nz = s["noise"].object();
      spec.normalNoise = nz["dist"].oneOf<bool>({{"normal", true}, {"uniform", false}});
      spec.zDim = nz["dim"].integer(js::kPositive);
      spec.low = nz["low"].finiteOr(-1);
      spec.high = nz["high"].finiteOr(1);
      if (nz.has("shape")) spec.zShape = nz["shape"].integers(js::kPositive);
      js::Object cond = s["conditioning"].objectOrEmpty();
      if (cond.has("classes")) spec.classes = cond["classes"].integer({2, std::numeric_limits<int32_t>::max()});
      step_ = std::make_shared<GanStep>(std::move(g), std::move(d), optG, optD, spec);
      // Sync-free updates by default where a host check per step would stall the device.
      step_->capturable = o["capturable"].booleanOr(step_->device.is_cuda());
      step_->cudaGraphs = o["cudaGraphs"].booleanOr(true);
      if (o.has("fastPath")) step_->fastPath = o["fastPath"].boolean() ? 1 : 0;
      if (!o["processGroup"].isNullish()) {
        step_->group = distGroupFrom(o["processGroup"]);
        // NCCL moves tensors on its own GPU only (models elsewhere would copy every gradient across each step).
        if (step_->group->nccl() && step_->device != step_->group->device())
          throwError(env, "GanStep: the process group (backend 'nccl') runs on " + step_->group->device().str() +
                              " but the models are on " + step_->device.str() +
                              ": build them on the group's GPU ('cuda' means it once initProcessGroup has joined)");
      }
    });
  }

  // JS thread: a progress report of the epoch in flight.
  void deliverProgress(Napi::Env env, const Progress& p) {
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
    if (napi_is_exception_pending(env, &pending) != napi_ok || !pending || napi_get_and_clear_last_exception(env, &thrown) != napi_ok)
      return;
    if (!job_->jsAlive() || !jsCanRun(env)) return;
    // Held in an object, so that a thrown primitive (throw 'boom') is kept too.
    Napi::Object holder = Napi::Object::New(env);
    holder.Set("error", Napi::Value(env, thrown));
    listenerError_ = Napi::Persistent(holder);
  }

  // JS thread: the epoch ended; settles its promise.
  void complete(Napi::Env env) {
    std::shared_ptr<EpochJob> job = std::move(job_);
    job->owner = nullptr;
    {
      std::lock_guard<std::mutex> lock(job->mu);
      job->lock.reset();
    }
    hook_.Remove(env);
    hook_ = {};
    stopListeningOnExit(env);
    step_->busy = false;
    Napi::Promise::Deferred deferred = *deferred_;
    deferred_.reset();
    onProgress_.Reset();
    Napi::HandleScope scope(env);
    if (!listenerError_.IsEmpty()) {
      Napi::Value err = listenerError_.Value().Get("error");
      listenerError_.Reset();
      deferred.Reject(err);
    } else if (job->error) {
      Napi::Error err = Napi::Error::New(env, *job->error);
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
      o.Set("cudaGraph", step_->graphStatus());
      deferred.Resolve(o);
    }
    Unref();
  }

 private:
  // noise() and drawLabels() draw on the JS thread from the models' device's default generator.
  void ensureGeneratorFree(Napi::Env env, const char* method) const {
    if (isGeneratorLocked(step_->device)) throwError(env, inUseMessage(method, generatorSubject(step_->device).c_str()));
  }

  void ensureIdle(Napi::Env env) {
    if (step_->busy)
      throwError(env,
                 "this GAN trainer is busy: an epoch is training on a worker thread; await it (or abort it) before another step or epoch");
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "step");
      at::Tensor real = args(0, "realBatch").tensor();
      js::Object o = args(1, "inputs").objectOrEmpty();
      at::Tensor y = o["labels"].tensorOrNone(), zD = o["zD"].tensorOrNone(), zG = o["zG"].tensorOrNone();
      at::Tensor yD = o["yD"].tensorOrNone(), yG = o["yG"].tensorOrNone();
      bool fed = zD.defined() || zG.defined() || yD.defined() || yG.defined();
      return resultToJs(env, onTrainThread(env, "step", true, [&] {
        StepTensors r = fed ? step_->step(real, y, zD, yD, zG, yG) : step_->stepAuto(real, y);
        return step_->finishStep(r, true);
      }));
    });
  }

  Napi::Value StepD(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "trainDiscriminator");
      at::Tensor real = args(0, "realBatch").tensor();
      js::Object o = args(1, "inputs").objectOrEmpty();
      at::Tensor y = o["labels"].tensorOrNone(), z = o["z"].tensorOrNone(), yFake = o["yFake"].tensorOrNone();
      return resultToJs(env, onTrainThread(env, "trainDiscriminator", true, [&] {
        StepTensors r = step_->stepD(real, y, z, yFake);
        return step_->finishStep(r, false);
      }));
    });
  }

  Napi::Value StepG(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "trainGenerator");
      int64_t n = args(0, "batchSize").integer(js::kPositive);
      js::Object o = args(1, "inputs").objectOrEmpty();
      at::Tensor z = o["z"].tensorOrNone(), yFake = o["yFake"].tensorOrNone();
      return resultToJs(env, onTrainThread(env, "trainGenerator", true, [&] {
        StepTensors r = step_->stepG(n, z, yFake);
        return step_->finishStep(r, false);
      }));
    });
  }

  Napi::Value SetTraining(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);  // the epoch's thread reads the modes
      js::Args args(info, "setTraining");
      bool g = args(0, "generator").boolean(), d = args(1, "discriminator").boolean();
      step_->G.training = g;
      step_->D.training = d;
      return env.Undefined();
    });
  }

  // generate(z, labels?): G's output for noise z (and labels, conditional GANs) in eval mode without
  // grad (sample grids), on the training thread.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "generate");
      at::Tensor z = args(0, "z").tensor();
      at::Tensor labels = args(1, "labels").tensorOrNone();
      at::Tensor out = onTrainThread(env, "generate", true, [&] {
        at::NoGradGuard ng;
        bool was = step_->G.training;
        step_->G.training = false;
        try {
          at::Tensor y = step_->generate(z.to(step_->device), labels.defined() ? labels.to(step_->device) : labels);
          step_->G.training = was;
          return y;
        } catch (...) {
          step_->G.training = was;
          throw;
        }
      });
      return TensorWrap::New(env, out);
    });
  }

  Napi::Value DrawLabels(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!step_->spec.classes) throwError(env, "drawLabels: this GAN is not conditional (its step spec has no conditioning)");
      ensureGeneratorFree(env, "drawLabels");
      return TensorWrap::New(env, step_->drawLabels(js::Args(info, "drawLabels")(0, "n").integer(js::kNonNegative)));
    });
  }

  Napi::Value Noise(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureGeneratorFree(env, "noise");
      return TensorWrap::New(env, step_->noise(js::Args(info, "noise")(0, "n").integer(js::kNonNegative)));
    });
  }

  // trainEpoch(data, { batchSize, shuffle, dropLast, seed, normalize, progressEvery, recordSteps, startStep, threads, onProgress })
  // -> Promise. The epoch runs on the training thread; progress and the result come back through a
  // thread-safe function, so no libuv worker waits on it (process exit would wait for that worker).
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "trainEpoch");
      const at::Tensor& data = args(0, "dataset").tensor();
      bool conv = step_->D.inputRank() == 4;
      int64_t channels = step_->D.inFeatures() - step_->spec.classes;
      if (conv ? !(data.dim() == 4 && data.size(1) == channels) && !(data.dim() == 3 && channels == 1) : data.dim() < 2)
        throwError(env, "trainEpoch: dataset must have shape " +
                            std::string(conv ? "[N, " + std::to_string(channels) + ", H, W]" + (channels == 1 ? " or [N, H, W]" : "") +
                                                   " for the convolutional discriminator"
                                             : "[N, features] or [N, H, W]") +
                            ", got " + c10::str(data.sizes()));
      int64_t width = data.numel() / std::max<int64_t>(data.size(0), 1);
      if (!conv && step_->D.inFeatures() > 0 && width != channels)
        throwError(env, "trainEpoch: dataset images have " + std::to_string(width) + " values each (shape " + c10::str(data.sizes()) +
                            "), the discriminator expects " + std::to_string(channels));
      if (data.device() != step_->device)
        throwError(env, "trainEpoch: dataset is on " + data.device().str() + " but the models are on " + step_->device.str());
      js::Object o = args(1, "options").object();
      at::Tensor labels = o["labels"].tensorOrNone();
      EpochOptions opt;
      opt.batchSize = o["batchSize"].integer(js::kPositive);
      if (opt.batchSize > data.size(0))
        throwError(env, "trainEpoch: batchSize " + std::to_string(opt.batchSize) + " is larger than the dataset (" +
                            std::to_string(data.size(0)) + " images)");
      opt.shuffle = o["shuffle"].booleanOr(true);
      opt.dropLast = o["dropLast"].booleanOr(false);
      opt.seed = uint64_t(o["seed"].integerOr(0, js::kNonNegative));
      opt.normalizeMinusOneOne = o["normalize"].oneOfOr<bool>(true, {{"[-1,1]", true}, {"[0,1]", false}});
      opt.progressEvery = o["progressEvery"].integerOr(50, js::kPositive);
      opt.recordSteps = o["recordSteps"].booleanOr(false);
      opt.startStep = o["startStep"].integerOr(0, js::kNonNegative);
      int threads = int(o["threads"].integerOr(at::get_num_threads(), {1, std::numeric_limits<int>::max()}));
      Napi::Function cb = o["onProgress"].functionOrNone();

      auto job = std::make_shared<EpochJob>();
      job->step = step_;
      job->data = data;
      job->labels = labels;
      job->opt = opt;
      job->threads = threads;
      job->owner = this;
      std::vector<at::Tensor> owned = step_->ownedTensors();
      owned.push_back(data);
      if (labels.defined()) owned.push_back(labels);
      // With the device's default generator: JS-thread draws from it would change the epoch's noise.
      job->lock = std::make_unique<EpochLock>(std::move(owned),
                                              std::vector<const void*>{step_->optG.get(), step_->optD.get(), generatorKey(step_->device)});
      std::weak_ptr<EpochJob> weak = job;
      // Its finalizer runs when it is released, or when the environment ends with it still held.
      job->tsfn = Napi::ThreadSafeFunction::New(env, Napi::Function(), "libtorch-gan:trainEpoch", 0, 1, [weak](Napi::Env) {
        if (auto j = weak.lock()) {
          std::lock_guard<std::mutex> lock(j->mu);
          j->js = false;
        }
      });
      if (!startOnTrainThread([job] { runEpoch(job); }, [job] { finishEpoch(job); })) {
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
      deferred_ = Napi::Promise::Deferred::New(env);
      if (!cb.IsEmpty()) onProgress_ = Napi::Persistent(cb);
      job_ = job;
      step_->busy = true;
      Ref();  // keep this handle alive until the epoch settles
      return deferred_->Promise();
    });
  }

  // process.exit() and a fatal exception end the process without tearing the environment down (no
  // cleanup hook runs), and nothing waits for the training thread: its epoch would run on into LibTorch's
  // static objects as exit() destroys them. The process's 'exit' event, the last JS to run, stops it at
  // the next step boundary first. The listener is there only while an epoch is in flight.
  void listenOnExit(Napi::Env env, const std::weak_ptr<EpochJob>& weak) {
    Napi::Value process = env.Global().Get("process");
    if (!process.IsObject()) return;
    Napi::Value prepend = process.As<Napi::Object>().Get("prependListener");
    if (!prepend.IsFunction()) return;
    exitListener_ = Napi::Persistent(Napi::Function::New(env, [weak](const Napi::CallbackInfo&) {
      if (auto j = weak.lock()) j->abandon();
    }));
    prepend.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), exitListener_.Value()});
  }

  void stopListeningOnExit(Napi::Env env) {
    if (exitListener_.IsEmpty()) return;
    Napi::Value process = env.Global().Get("process");
    Napi::Value remove = process.IsObject() ? process.As<Napi::Object>().Get("removeListener") : env.Undefined();
    if (remove.IsFunction()) remove.As<Napi::Function>().Call(process, {Napi::String::New(env, "exit"), exitListener_.Value()});
    exitListener_.Reset();
  }

  // The training thread's part of one epoch.
  static void runEpoch(const std::shared_ptr<EpochJob>& job) {
    try {
      // Grad mode and the intra-op thread count are per thread in LibTorch: set them here.
      c10::AutoGradMode grad(true);
      at::init_num_threads();
      at::set_num_threads(job->threads);
      applyFlushDenormal();
      std::weak_ptr<EpochJob> weak = job;
      job->result = job->step->trainEpoch(job->data, job->labels, job->opt, [&](const Progress& p) {
        job->post([weak, p](Napi::Env env) { onJsThread(weak, [&](GanStepWrap& w) { w.deliverProgress(env, p); }); });
      }, job->stop);
    } catch (const c10::Error& e) {
      job->error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      job->error = e.what();
    } catch (...) {
      job->error = "trainEpoch: unknown native error";
    }
  }

  // The training thread, free again: hands the outcome to JS, or lets it go when JS is gone.
  static void finishEpoch(const std::shared_ptr<EpochJob>& job) {
    std::unique_lock<std::mutex> lock(job->mu);
    if (job->js) {
      // The tensors stay locked until the promise settles (complete()), so that the rule a caller sees
      // does not depend on when the last report is delivered.
      std::weak_ptr<EpochJob> weak = job;
      job->tsfn.NonBlockingCall([weak](Napi::Env env, Napi::Function) { onJsThread(weak, [&](GanStepWrap& w) { w.complete(env); }); });
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
    lock.unlock();
    job->cv.notify_all();
  }

  // A callback queued by the training thread, on the JS thread: nothing once the environment is going
  // away, and nothing thrown out of it (there is no JS caller to take an exception).
  template <typename F>
  static void onJsThread(const std::weak_ptr<EpochJob>& weak, F&& fn) {
    auto job = weak.lock();
    if (!job || !job->jsAlive() || !job->owner || !jsCanRun(job->owner->Env())) return;
    try {
      fn(*job->owner);
    } catch (...) {
    }
  }

  Napi::Value RequestStop(const Napi::CallbackInfo& info) {
    if (job_) job_->stop = true;
    return Napi::Boolean::New(info.Env(), job_ != nullptr);
  }

  Napi::Value IsBusy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), bool(step_->busy)); }
  Napi::Value GraphStatus(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), step_->graphStatus()); }
  Napi::Value IsCapturable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), step_->capturable); }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), step_->path()); }

  // profile(on): resets the MLP path's phase times and turns their measuring on or off.
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    bool on = guard(env, [&] { return js::Args(info, "GanStep.profile")(0, "on").boolean(); });
    if (step_->busy) throwError(env, "GanStep.profile: a trainEpoch is running; call it before or after");
    bool onMlp = step_->path() == "mlp";
    MlpPath* m = onMlp ? step_->ensureMlpPath() : step_->mlpPath();
    if (m) {
      m->profiling = on;
      m->phaseMs.fill(0);
      m->profiledSteps = 0;
    }
    return Napi::Boolean::New(env, onMlp);
  }

  // phases(): milliseconds per phase of the MLP path since profile(true), or null when it never ran.
  Napi::Value Phases(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    MlpPath* m = step_->mlpPath();
    if (!m) return env.Null();
    if (step_->busy) throwError(env, "GanStep.phases: a trainEpoch is running; read them after it");
    static const char* names[] = {"dForward", "dBackward", "gForward", "gBackward", "updates", "losses", "masks"};
    auto o = Napi::Object::New(env);
    for (int i = 0; i < MlpPath::kPhases; ++i) o.Set(names[i], m->phaseMs[i]);
    o.Set("steps", double(m->profiledSteps));
    return o;
  }

  std::shared_ptr<GanStep> step_;
  // The epoch in flight and its JS side (JS thread only).
  std::shared_ptr<EpochJob> job_;
  std::optional<Napi::Promise::Deferred> deferred_;
  Napi::FunctionReference onProgress_;
  Napi::ObjectReference listenerError_;  // { error }: what onProgress threw; the epoch rejects with it
  Napi::Env::CleanupHook<std::function<void()>> hook_;
  Napi::FunctionReference exitListener_;  // on the process's 'exit' event
};

}  // namespace

void InitGan(Napi::Env env, Napi::Object exports) { GanStepWrap::Init(env, exports); }

}  // namespace ltg
