// N-API side of the fused GAN step: NativeGanStep, and trainEpoch on a worker thread.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include "addon_data.h"
#include "bindings.h"
#include "errors.h"
#include "gan_step.h"
#include "optim_wrap.h"
#include "tensor_wrap.h"
#include "train_thread.h"
#include "fp_mode.h"

namespace ltg {

namespace {

std::string str(const Napi::Object& o, const char* key) {
  return o.Has(key) && o.Get(key).IsString() ? o.Get(key).As<Napi::String>().Utf8Value() : "";
}
double num(Napi::Env env, const Napi::Object& o, const char* key, double dflt) {
  if (!o.Has(key) || o.Get(key).IsUndefined() || o.Get(key).IsNull()) return dflt;
  if (!o.Get(key).IsNumber()) throwType(env, std::string("GanStep: ") + key + " must be a number, got " + o.Get(key).ToString().Utf8Value());
  return o.Get(key).As<Napi::Number>().DoubleValue();
}
at::Tensor optTensor(Napi::Env env, const Napi::Object& o, const char* key, const std::string& where) {
  if (!o.Has(key) || o.Get(key).IsNull() || o.Get(key).IsUndefined()) return at::Tensor();
  return TensorWrap::Get(env, o.Get(key), (where + "." + key).c_str());
}

// [{ kind, name, weight?, bias?, runningMean?, runningVar?, numBatchesTracked?, negativeSlope?, p?, eps?, momentum?, ... }]
Sequential layersFromJs(Napi::Env env, const Napi::Value& v, const char* which) {
  if (!v.IsArray()) throwType(env, std::string("GanStep: ") + which + " must be an array of layers");
  Sequential seq;
  auto arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    auto o = arr.Get(i).As<Napi::Object>();
    Layer l;
    std::string kind = str(o, "kind");
    l.name = std::string(which) + "." + str(o, "name");
    using K = Layer::Kind;
    if (kind == "Linear") l.kind = K::Linear;
    else if (kind == "ReLU") l.kind = K::ReLU;
    else if (kind == "LeakyReLU") l.kind = K::LeakyReLU;
    else if (kind == "Tanh") l.kind = K::Tanh;
    else if (kind == "Sigmoid") l.kind = K::Sigmoid;
    else if (kind == "Dropout") l.kind = K::Dropout;
    else if (kind == "BatchNorm1d") l.kind = K::BatchNorm1d;
    else if (kind == "Flatten") l.kind = K::Flatten;
    else if (kind == "Unflatten") l.kind = K::Unflatten;
    else throwType(env, "GanStep: unsupported layer '" + kind + "' in " + l.name + " (supported: Linear, ReLU, LeakyReLU, Tanh, Sigmoid, Dropout, BatchNorm1d, Flatten, Unflatten)");
    l.weight = optTensor(env, o, "weight", l.name);
    l.bias = optTensor(env, o, "bias", l.name);
    l.runningMean = optTensor(env, o, "runningMean", l.name);
    l.runningVar = optTensor(env, o, "runningVar", l.name);
    l.numBatchesTracked = optTensor(env, o, "numBatchesTracked", l.name);
    l.slope = num(env, o, "negativeSlope", 0.01);
    l.p = num(env, o, "p", 0.5);
    l.eps = num(env, o, "eps", 1e-5);
    l.momentum = num(env, o, "momentum", 0.1);
    l.startDim = int64_t(num(env, o, "startDim", 1));
    l.endDim = int64_t(num(env, o, "endDim", -1));
    l.dim = int64_t(num(env, o, "dim", 1));
    if (o.Has("sizes") && o.Get("sizes").IsArray()) {
      auto s = o.Get("sizes").As<Napi::Array>();
      for (uint32_t j = 0; j < s.Length(); ++j) l.sizes.push_back(int64_t(s.Get(j).As<Napi::Number>().DoubleValue()));
    }
    if (l.kind == K::Linear && !l.weight.defined()) throwType(env, "GanStep: " + l.name + " (Linear) has no weight");
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
  EpochWorker(Napi::Env env, GanStepWrap* owner, std::shared_ptr<GanStep> step, at::Tensor data, EpochOptions opt, Napi::Function onProgress, int threads)
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
    auto ctor = DefineClass(env, "NativeGanStep",
                            {InstanceMethod<&GanStepWrap::Step>("step"), InstanceMethod<&GanStepWrap::StepD>("stepD"),
                             InstanceMethod<&GanStepWrap::StepG>("stepG"), InstanceMethod<&GanStepWrap::SetTraining>("setTraining"),
                             InstanceMethod<&GanStepWrap::TrainEpoch>("trainEpoch"), InstanceMethod<&GanStepWrap::RequestStop>("requestStop"),
                             InstanceMethod<&GanStepWrap::IsBusy>("isBusy"), InstanceMethod<&GanStepWrap::Noise>("noise"),
                             InstanceMethod<&GanStepWrap::Generate>("generate"), InstanceMethod<&GanStepWrap::GraphStatus>("graphStatus"),
                             InstanceMethod<&GanStepWrap::IsCapturable>("isCapturable")});
    addonData(env).ganStepCtor = Napi::Persistent(ctor);
    exports.Set("NativeGanStep", ctor);
  }

  // new NativeGanStep({ g, d, optG, optD, spec: { loss, realLabel, fakeLabel, dLossReduction, detachFakeForD, gNoise, separateDBackward, noise } })
  explicit GanStepWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GanStepWrap>(info) {
    auto env = info.Env();
    guard(env, [&] {
      if (!info[0].IsObject()) throwType(env, "GanStep: expected an options object");
      auto o = info[0].As<Napi::Object>();
      Sequential g = layersFromJs(env, o.Get("g"), "generator");
      Sequential d = layersFromJs(env, o.Get("d"), "discriminator");
      auto optG = optimizerFromJs(env, o.Get("optG"), "GanStep optG");
      auto optD = optimizerFromJs(env, o.Get("optD"), "GanStep optD");
      if (!o.Get("spec").IsObject()) throwType(env, "GanStep: spec must be an object");
      auto s = o.Get("spec").As<Napi::Object>();
      GanSpec spec;
      std::string loss = str(s, "loss");
      if (loss != "bce" && loss != "bceWithLogits") throwType(env, "GanStep: spec.loss must be 'bce' or 'bceWithLogits', got '" + loss + "'");
      spec.logits = loss == "bceWithLogits";
      spec.realLabel = num(env, s, "realLabel", 1);
      spec.fakeLabel = num(env, s, "fakeLabel", 0);
      spec.dLossMean = str(s, "dLossReduction") == "mean";
      spec.detachFakeForD = s.Get("detachFakeForD").ToBoolean().Value();
      spec.reuseFakeForG = str(s, "gNoise") == "reuse";
      spec.separateDBackward = s.Get("separateDBackward").ToBoolean().Value();
      if (!s.Get("noise").IsObject()) throwType(env, "GanStep: spec.noise must be an object");
      auto nz = s.Get("noise").As<Napi::Object>();
      spec.normalNoise = str(nz, "dist") != "uniform";
      spec.zDim = int64_t(num(env, nz, "dim", 100));
      spec.low = num(env, nz, "low", -1);
      spec.high = num(env, nz, "high", 1);
      step_ = std::make_shared<GanStep>(std::move(g), std::move(d), optG, optD, spec);
      // Sync-free updates by default where a host check per step would stall the device.
      auto flag = [&](const char* key, bool dflt) { return o.Has(key) && !o.Get(key).IsUndefined() ? o.Get(key).ToBoolean().Value() : dflt; };
      step_->capturable = flag("capturable", step_->device.is_cuda());
      step_->cudaGraphs = flag("cudaGraphs", true);
    });
  }

  void finish() {
    step_->busy = false;
    worker_ = nullptr;
  }

 private:
  void ensureIdle(Napi::Env env) {
    if (step_->busy) throwError(env, "this GAN trainer is busy: an epoch is training on a worker thread; await it (or abort it) before another step or epoch");
  }
  at::Tensor optZ(Napi::Env env, const Napi::CallbackInfo& info, size_t i, const char* what) {
    return info.Length() > i && TensorWrap::IsTensor(env, info[i]) ? TensorWrap::Get(env, info[i], what) : at::Tensor();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      at::Tensor real = TensorWrap::Get(env, info[0], "step(realBatch)");
      at::Tensor zD = optZ(env, info, 1, "step(zD)"), zG = optZ(env, info, 2, "step(zG)");
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
      at::Tensor real = TensorWrap::Get(env, info[0], "trainDiscriminator(realBatch)");
      at::Tensor z = optZ(env, info, 1, "trainDiscriminator(z)");
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
      double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
      if (!(n >= 1) || n != double(int64_t(n))) throwType(env, "trainGenerator(batchSize): expected a positive integer, got " + info[0].ToString().Utf8Value());
      at::Tensor z = optZ(env, info, 1, "trainGenerator(z)");
      return resultToJs(env, onTrainThread([&] {
        StepTensors r = step_->stepG(int64_t(n), z);
        return step_->finishStep(r, false);
      }));
    });
  }

  Napi::Value SetTraining(const Napi::CallbackInfo& info) {
    step_->G.training = info[0].ToBoolean().Value();
    step_->D.training = info[1].ToBoolean().Value();
    return info.Env().Undefined();
  }

  // generate(z): G's output for noise z in eval mode without grad (sample grids), on the training thread.
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      at::Tensor z = TensorWrap::Get(env, info[0], "generate(z)");
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
    return guard(env, [&]() -> Napi::Value { return TensorWrap::New(env, step_->noise(int64_t(info[0].As<Napi::Number>().DoubleValue()))); });
  }

  // trainEpoch(data, { batchSize, shuffle, dropLast, seed, normalize, progressEvery, recordSteps }, onProgress?) -> Promise
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      const at::Tensor& data = TensorWrap::Get(env, info[0], "trainEpoch(dataset)");
      if (data.dim() < 2) throwError(env, "trainEpoch: dataset must have shape [N, 784] or [N, 28, 28], got " + c10::str(data.sizes()));
      int64_t width = data.numel() / std::max<int64_t>(data.size(0), 1);
      if (step_->D.inFeatures() > 0 && width != step_->D.inFeatures())
        throwError(env, "trainEpoch: dataset images have " + std::to_string(width) + " values each (shape " + c10::str(data.sizes()) + "), the discriminator expects " + std::to_string(step_->D.inFeatures()));
      if (data.device() != step_->device)
        throwError(env, "trainEpoch: dataset is on " + data.device().str() + " but the models are on " + step_->device.str());
      auto o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
      EpochOptions opt;
      double bs = num(env, o, "batchSize", 64);
      if (!(bs >= 1) || bs != double(int64_t(bs))) throwError(env, "trainEpoch: batchSize must be a positive integer, got " + o.Get("batchSize").ToString().Utf8Value());
      opt.batchSize = int64_t(bs);
      if (opt.batchSize > data.size(0)) throwError(env, "trainEpoch: batchSize " + std::to_string(opt.batchSize) + " is larger than the dataset (" + std::to_string(data.size(0)) + " images)");
      opt.shuffle = !o.Has("shuffle") || o.Get("shuffle").ToBoolean().Value();
      opt.dropLast = o.Has("dropLast") && o.Get("dropLast").ToBoolean().Value();
      opt.seed = uint64_t(num(env, o, "seed", 0));
      opt.normalizeMinusOneOne = str(o, "normalize") != "[0,1]";
      opt.progressEvery = std::max<int64_t>(1, int64_t(num(env, o, "progressEvery", 50)));
      opt.recordSteps = o.Has("recordSteps") && o.Get("recordSteps").ToBoolean().Value();
      double startStep = num(env, o, "startStep", 0);
      if (!(startStep >= 0) || startStep != double(int64_t(startStep))) throwError(env, "trainEpoch: startStep must be an integer >= 0, got " + o.Get("startStep").ToString().Utf8Value());
      opt.startStep = int64_t(startStep);
      double threads = num(env, o, "threads", at::get_num_threads());
      if (!(threads >= 1) || threads != double(int(threads))) throwError(env, "trainEpoch: threads must be a positive integer, got " + o.Get("threads").ToString().Utf8Value());
      Napi::Function cb = info.Length() > 2 && info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
      step_->busy = true;
      worker_ = new EpochWorker(env, this, step_, data, opt, cb, int(threads));  // napi owns and deletes queued workers
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
    Napi::Error err = Napi::Error::New(env, "epoch cancelled at step " + std::to_string(opt_.startStep + result_.steps) + " of " +
                                                std::to_string(result_.totalSteps));
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
