// N-API side of the fused GAN step: NativeGanStep, and trainEpoch on a worker thread.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <limits>

#include "addon_data.h"
#include "bindings.h"
#include "errors.h"
#include "fp_mode.h"
#include "gan_step.h"
#include "js_args.h"
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
    {"BatchNorm1d", Layer::Kind::BatchNorm1d}, {"Flatten", Layer::Kind::Flatten},
    {"Unflatten", Layer::Kind::Unflatten},
};

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
      case K::BatchNorm1d:
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

// Runs fused-step work on the training thread (see train_thread.h) with grad mode on and the calling
// thread's intra-op thread count, so that only one thread of the process ever runs parallel work.
template <typename F>
auto onTrainThread(F&& fn) -> decltype(fn()) {
  int threads = at::get_num_threads();
  decltype(fn()) out;
  runOnTrainThread([&] {
    c10::AutoGradMode grad(true);
    if (at::get_num_threads() != threads) at::set_num_threads(threads);
    applyFlushDenormal();
    out = fn();
  });
  return out;
}

// Runs one epoch on a libuv worker thread; progress is queued to the JS thread.
class EpochWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  EpochWorker(Napi::Env env, GanStepWrap* owner, std::shared_ptr<GanStep> step, at::Tensor data, EpochOptions opt,
              Napi::Function onProgress, int threads)
      : Napi::AsyncProgressQueueWorker<Progress>(env), owner_(owner), step_(std::move(step)), data_(std::move(data)), opt_(opt),
        deferred_(Napi::Promise::Deferred::New(env)), threads_(threads) {
    if (!onProgress.IsEmpty()) onProgress_ = Napi::Persistent(onProgress);
  }

  Napi::Promise promise() { return deferred_.Promise(); }

  void Execute(const ExecutionProgress& progress) override {
    try {
      runOnTrainThread([&] {
        // Grad mode and the intra-op thread count are per thread in LibTorch: set them there.
        c10::AutoGradMode grad(true);
        at::init_num_threads();
        at::set_num_threads(threads_);
        applyFlushDenormal();
        result_ = step_->trainEpoch(data_, opt_, [&](const Progress& p) { progress.Send(&p, 1); }, stop);
      });
    } catch (const c10::Error& e) {
      SetError(e.what_without_backtrace());
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }

  void OnProgress(const Progress* p, size_t count) override {
    if (onProgress_.IsEmpty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    for (size_t i = 0; i < count; ++i) {
      auto o = Napi::Object::New(env);
      o.Set("step", double(p[i].step));
      o.Set("totalSteps", double(p[i].totalSteps));
      o.Set("dLoss", p[i].dLoss);
      o.Set("gLoss", p[i].gLoss);
      o.Set("dReal", p[i].dReal);
      o.Set("dFake", p[i].dFake);
      try {
        onProgress_.Call({o});
      } catch (const Napi::Error&) {
        // A throwing progress callback must not take the worker down; the epoch carries on.
      }
    }
  }

  void OnOK() override;
  void OnError(const Napi::Error& e) override;

  std::atomic<bool> stop{false};

 private:
  GanStepWrap* owner_;
  std::shared_ptr<GanStep> step_;
  at::Tensor data_;  // our own reference: disposing the JS handle mid-epoch cannot free it under us
  EpochOptions opt_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onProgress_;
  EpochResult result_;
  int threads_;
};

class GanStepWrap : public Napi::ObjectWrap<GanStepWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor =
        DefineClass(env, "NativeGanStep",
                    {InstanceMethod<&GanStepWrap::Step>("step"), InstanceMethod<&GanStepWrap::StepD>("stepD"),
                     InstanceMethod<&GanStepWrap::StepG>("stepG"), InstanceMethod<&GanStepWrap::SetTraining>("setTraining"),
                     InstanceMethod<&GanStepWrap::TrainEpoch>("trainEpoch"), InstanceMethod<&GanStepWrap::RequestStop>("requestStop"),
                     InstanceMethod<&GanStepWrap::IsBusy>("isBusy"), InstanceMethod<&GanStepWrap::Noise>("noise"),
                     InstanceMethod<&GanStepWrap::Generate>("generate"), InstanceMethod<&GanStepWrap::GraphStatus>("graphStatus"),
                     InstanceMethod<&GanStepWrap::IsCapturable>("isCapturable")});
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
      step_ = std::make_shared<GanStep>(std::move(g), std::move(d), optG, optD, spec);
      // Sync-free updates by default where a host check per step would stall the device.
      step_->capturable = o["capturable"].booleanOr(step_->device.is_cuda());
      step_->cudaGraphs = o["cudaGraphs"].booleanOr(true);
    });
  }

  void finish() {
    step_->busy = false;
    worker_ = nullptr;
  }

 private:
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
      at::Tensor zD = args(1, "zD").tensorOrNone(), zG = args(2, "zG").tensorOrNone();
      return resultToJs(env, onTrainThread([&] {
        StepTensors r = zD.defined() || zG.defined() ? step_->step(real, zD, zG) : step_->stepAuto(real);
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
      at::Tensor z = args(1, "z").tensorOrNone();
      return resultToJs(env, onTrainThread([&] {
        StepTensors r = step_->stepD(real, z);
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
      at::Tensor z = args(1, "z").tensorOrNone();
      return resultToJs(env, onTrainThread([&] {
        StepTensors r = step_->stepG(n, z);
        return step_->finishStep(r, false);
      }));
    });
  }

  Napi::Value SetTraining(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      js::Args args(info, "setTraining");
      bool g = args(0, "generator").boolean(), d = args(1, "discriminator").boolean();
      step_->G.training = g;
      step_->D.training = d;
      return info.Env().Undefined();
    });
  }

  // generate(z): G's output for noise z in eval mode without grad (sample grids), on the training thread.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      at::Tensor z = js::Args(info, "generate")(0, "z").tensor();
      at::Tensor out = onTrainThread([&] {
        at::NoGradGuard ng;
        bool was = step_->G.training;
        step_->G.training = false;
        try {
          at::Tensor y = step_->G.forward(z.to(step_->device));
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

  Napi::Value Noise(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      return TensorWrap::New(env, step_->noise(js::Args(info, "noise")(0, "n").integer(js::kNonNegative)));
    });
  }

  // trainEpoch(data, { batchSize, shuffle, dropLast, seed, normalize, progressEvery, recordSteps }, onProgress?) -> Promise
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "trainEpoch");
      const at::Tensor& data = args(0, "dataset").tensor();
      if (data.dim() < 2) throwError(env, "trainEpoch: dataset must have shape [N, 784] or [N, 28, 28], got " + c10::str(data.sizes()));
      int64_t width = data.numel() / std::max<int64_t>(data.size(0), 1);
      if (step_->D.inFeatures() > 0 && width != step_->D.inFeatures())
        throwError(env, "trainEpoch: dataset images have " + std::to_string(width) + " values each (shape " + c10::str(data.sizes()) +
                            "), the discriminator expects " + std::to_string(step_->D.inFeatures()));
      if (data.device() != step_->device)
        throwError(env, "trainEpoch: dataset is on " + data.device().str() + " but the models are on " + step_->device.str());
      js::Object o = args(1, "options").object();
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
      Napi::Function cb = args(2, "onProgress").functionOrNone();
      step_->busy = true;
      worker_ = new EpochWorker(env, this, step_, data, opt, cb, threads);  // napi owns and deletes queued workers
      Ref();  // keep this handle alive until the worker finishes
      Napi::Promise p = worker_->promise();
      worker_->Queue();
      return p;
    });
  }

  Napi::Value RequestStop(const Napi::CallbackInfo& info) {
    if (worker_) worker_->stop = true;
    return Napi::Boolean::New(info.Env(), worker_ != nullptr);
  }

  Napi::Value IsBusy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), bool(step_->busy)); }
  Napi::Value GraphStatus(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), step_->graphStatus()); }
  Napi::Value IsCapturable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), step_->capturable); }

  std::shared_ptr<GanStep> step_;
  EpochWorker* worker_ = nullptr;

  friend class EpochWorker;
};

void EpochWorker::OnOK() {
  Napi::Env env = Env();
  owner_->finish();
  owner_->Unref();
  if (result_.aborted) {
    // Rejected as an AbortError that says how far the epoch got, so a caller can checkpoint and resume it exactly.
    Napi::Error err = Napi::Error::New(
        env, "epoch cancelled at step " + std::to_string(opt_.startStep + result_.steps) + " of " + std::to_string(result_.totalSteps));
    err.Set("name", Napi::String::New(env, "AbortError"));
    err.Set("completedSteps", double(result_.steps));
    if (result_.perStep.defined()) err.Set("perStep", TensorWrap::New(env, result_.perStep));
    deferred_.Reject(err.Value());
    return;
  }
  auto o = Napi::Object::New(env);
  o.Set("steps", double(result_.steps));
  o.Set("images", double(result_.images));
  o.Set("dLoss", result_.dLoss);
  o.Set("gLoss", result_.gLoss);
  o.Set("dReal", result_.dReal);
  o.Set("dFake", result_.dFake);
  if (result_.perStep.defined()) o.Set("perStep", TensorWrap::New(env, result_.perStep));
  o.Set("cudaGraph", owner_->step_->graphStatus());
  deferred_.Resolve(o);
}

void EpochWorker::OnError(const Napi::Error& e) {
  owner_->finish();
  owner_->Unref();
  Napi::Error err = Napi::Error::New(Env(), e.Message());
  if (stop.load()) err.Set("name", Napi::String::New(Env(), "AbortError"));
  deferred_.Reject(err.Value());
}

}  // namespace

void InitGan(Napi::Env env, Napi::Object exports) { GanStepWrap::Init(env, exports); }

}  // namespace ltg
