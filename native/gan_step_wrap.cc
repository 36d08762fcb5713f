// N-API side of the fused GAN step: NativeGanStep. Its spec and layers are read by gan_spec_js.cc;
// trainEpoch's life on the training thread is epoch_job.cc's.
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "addon_data.h"
#include "bindings.h"
#include "dist_wrap.h"
#include "epoch_job.h"
#include "epoch_lock.h"
#include "errors.h"
#include "gan_spec_js.h"
#include "gan_step.h"
#include "js_args.h"
#include "on_train_thread.h"
#include "optim_wrap.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

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

class GanStepWrap : public Napi::ObjectWrap<GanStepWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor =
        DefineClass(env, "NativeGanStep",
                    {InstanceMethod<&GanStepWrap::Step>("step"), InstanceMethod<&GanStepWrap::StepD>("stepD"),
                     InstanceMethod<&GanStepWrap::StepG>("stepG"), InstanceMethod<&GanStepWrap::SetTraining>("setTraining"),
                     InstanceMethod<&GanStepWrap::TrainEpoch>("trainEpoch"), InstanceMethod<&GanStepWrap::RequestStop>("requestStop"),
                     InstanceMethod<&GanStepWrap::IsBusy>("isBusy"), InstanceMethod<&GanStepWrap::Noise>("noise"),
                     InstanceMethod<&GanStepWrap::DrawLabels>("drawLabels"), InstanceMethod<&GanStepWrap::Generate>("generate"),
                     InstanceMethod<&GanStepWrap::GraphStatus>("graphStatus"), InstanceMethod<&GanStepWrap::IsCapturable>("isCapturable"),
                     InstanceMethod<&GanStepWrap::Path>("path"), InstanceMethod<&GanStepWrap::Profile>("profile"),
                     InstanceMethod<&GanStepWrap::Phases>("phases"), InstanceMethod<&GanStepWrap::EmaUpdates>("emaUpdates"),
                     InstanceMethod<&GanStepWrap::LastGLoss>("lastGLoss"), InstanceMethod<&GanStepWrap::GradScale>("gradScale")});
    addonData(env).ganStepCtor = Napi::Persistent(ctor);
    exports.Set("NativeGanStep", ctor);
  }

  // new NativeGanStep({ g, d, optG, optD, spec, ema?, capturable?, cudaGraphs? }): NativeGanStepOptions in ts/native/addon.ts
  explicit GanStepWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GanStepWrap>(info) {
    auto env = info.Env();
    guard(env, [&] {
      js::Object o = js::Args(info, "GanStep")(0, "options").object();
      Sequential g = layersFromJs(o["g"], "generator");
      Sequential d = layersFromJs(o["d"], "discriminator");
      auto optG = optimizerFromJs(o["optG"]);
      auto optD = optimizerFromJs(o["optD"]);
      if (isLocked(optG.get()) || isLocked(optD.get())) throwError(env, inUseMessage("GanStep", "an optimizer"));
      GanSpec spec = ganSpecFromJs(o["spec"]);
      Sequential ema = o["ema"].isNullish() ? Sequential{} : layersFromJs(o["ema"], "ema");
      step_ = std::make_shared<GanStep>(std::move(g), std::move(d), optG, optD, spec, std::move(ema));
      // Sync-free updates by default where a host check per step would stall the device.
      step_->capturable = o["capturable"].booleanOr(step_->device.is_cuda());
      step_->cudaGraphs = o["cudaGraphs"].booleanOr(true);
      if (o.has("fastPath")) step_->fastPath = o["fastPath"].boolean() ? 1 : 0;
      if (o.has("precision")) {
        static constexpr js::Choice<Precision> kPrecisions[] = {
            {"fp32", Precision::Fp32}, {"bf16", Precision::Bf16}, {"fp16", Precision::Fp16}};
        step_->setPrecision(o["precision"].oneOf(kPrecisions));
        std::string why = precisionUnsupportedReason(step_->precision, step_->device);
        if (!why.empty()) throwError(env, "GanStep: " + why);
      }
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
        step_->updateScale();  // one update alone is a step for fp16's loss scale
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
        step_->updateScale();
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

  // generate(z, labels?, ema?): G's output for noise z (and labels, conditional GANs) in eval mode
  // without grad (sample grids), on the training thread; the EMA generator's when it has one (ema
  // defaults to whether it has one).
  Napi::Value Generate(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "generate");
      at::Tensor z = args(0, "z").tensor();
      at::Tensor labels = args(1, "labels").tensorOrNone();
      bool ema = args(2, "ema").booleanOr(step_->spec.ema.on);
      at::Tensor out = onTrainThread(env, "generate", true, [&] {
        at::NoGradGuard ng;
        bool was = step_->G.training;
        step_->G.training = false;
        try {
          at::Tensor y = step_->generate(z.to(step_->device), labels.defined() ? labels.to(step_->device) : labels, ema);
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
      if (!step_->spec.conditioning.classes) throwError(env, "drawLabels: this GAN is not conditional (its step spec has no conditioning)");
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
  // -> Promise: the options are read here, the epoch runs as an EpochJob (epoch_job.h).
  Napi::Value TrainEpoch(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Args args(info, "trainEpoch");
      const at::Tensor& data = args(0, "dataset").tensor();
      bool conv = step_->D.inputRank() == 4;
      int64_t channels = step_->D.inFeatures() - step_->spec.conditioning.classes;
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
      return epoch_.start(env, info.This().As<Napi::Object>(), std::move(job), cb);
    });
  }

  Napi::Value RequestStop(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), epoch_.requestStop()); }

  Napi::Value IsBusy(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), bool(step_->busy)); }
  Napi::Value GraphStatus(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), step_->graphStatus()); }
  Napi::Value IsCapturable(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), step_->capturable); }
  Napi::Value Path(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), step_->path()); }

  // emaUpdates(n?): the G updates the EMA has followed (its start counts them); with n, sets it (a resumed run).
  Napi::Value EmaUpdates(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      js::Value n = js::Args(info, "GanStep.emaUpdates")(0, "n");
      if (!n.isUndefined()) {
        ensureIdle(env);
        step_->emaUpdates = n.integer(js::kNonNegative);
      }
      return Napi::Number::New(env, double(step_->emaUpdates));
    });
  }

  // lastGLoss(v?): the G loss a D-only step reports (null before the first G update); with v, sets it.
  Napi::Value LastGLoss(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      js::Value v = js::Args(info, "GanStep.lastGLoss")(0, "value");
      if (!v.isUndefined()) step_->setLastGLoss(v.finite());
      std::optional<double> out = step_->lastGLoss();
      return out ? Napi::Number::New(env, *out) : env.Null();
    });
  }

  // gradScale(): fp16's current loss scale (GradScaler.get_scale()), or null for another precision.
  Napi::Value GradScale(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureIdle(env);
      at::Tensor s = step_->gradScale();
      if (!s.defined()) return env.Null();
      return Napi::Number::New(env, onTrainThread(env, "GanStep.gradScale", false, [&] { return s.item<double>(); }));
    });
  }

  // profile(on): resets the fast path's phase times and turns their measuring on or off.
  Napi::Value Profile(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      bool on = js::Args(info, "GanStep.profile")(0, "on").boolean();
      if (step_->busy) throwError(env, "GanStep.profile: a trainEpoch is running; call it before or after");
      bool onFast = step_->path() == "fast";
      FastPath* m = onFast ? step_->ensureFastPath() : step_->fast();
      if (m) {
        m->profiling = on;
        m->phaseMs.fill(0);
        m->profiledSteps = 0;
      }
      return Napi::Boolean::New(env, onFast);
    });
  }

  // phases(): milliseconds per phase of the fast path since profile(true), or null when it never ran.
  Napi::Value Phases(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      FastPath* m = step_->fast();
      if (!m) return env.Null();
      if (step_->busy) throwError(env, "GanStep.phases: a trainEpoch is running; read them after it");
      static const char* names[] = {"dForward", "dBackward", "gForward", "gBackward", "updates", "losses", "masks"};
      auto o = Napi::Object::New(env);
      for (int i = 0; i < FastPath::kPhases; ++i) o.Set(names[i], m->phaseMs[i]);
      o.Set("steps", double(m->profiledSteps));
      return o;
    });
  }

  std::shared_ptr<GanStep> step_;
  EpochCall epoch_;  // trainEpoch's JS side (JS thread only)
};

}  // namespace

void InitGan(Napi::Env env, Napi::Object exports) { GanStepWrap::Init(env, exports); }

}  // namespace ltg
