#include "optim_wrap.h"

#include "addon_data.h"
#include "bindings.h"
#include "epoch_lock.h"
#include "errors.h"
#include "js_args.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

std::vector<at::Tensor> paramsFromJs(const js::Value& v, const char* who) {
  Napi::Env env = v.env();
  uint32_t n = v.array().Length();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < n; ++i) {
    at::Tensor t = v.at(i).tensor();
    if (!t.is_leaf())
      throwError(env, std::string(who) + ": params[" + std::to_string(i) + "] is not a leaf tensor (optimizers update leaves)");
    if (!at::isFloatingType(t.scalar_type()))
      throwType(env, std::string(who) + ": params[" + std::to_string(i) + "] has dtype " + js::dtypeName(t.scalar_type()) +
                         ", expected a floating dtype");
    out.push_back(t);
  }
  return out;
}

// Parameter `index` of setState, in range for an optimizer of n parameters.
size_t paramIndex(const js::Value& v, size_t n) { return size_t(v.integer({0, int64_t(n) - 1})); }

// A state tensor of parameter p (a fresh copy on its device and dtype); undefined when absent and not required.
at::Tensor stateTensor(const js::Value& v, const at::Tensor& p, bool required) {
  at::Tensor t = required ? v.tensor() : v.tensorOrNone();
  if (!t.defined()) return t;
  if (t.sizes() != p.sizes())
    throwError(v.env(), v.label() + " has shape " + c10::str(t.sizes()) + ", expected the parameter's " + c10::str(p.sizes()));
  // Contiguous, as the parameters: the fused updates walk state and parameter memory flat, side by side.
  return t.detach().to(p.device(), p.scalar_type(), false, true, at::MemoryFormat::Contiguous);
}

Napi::Value tensorOrNull(Napi::Env env, const at::Tensor& t) { return t.defined() ? Napi::Value(TensorWrap::New(env, t)) : env.Null(); }

// What NativeAdam and NativeSGD share: N-API binds instance methods of the wrapped class itself, so
// each handle class derives from its own instance of this base (CRTP). Derived provides kName, its
// constructor, GetState and SetState.
template <typename Derived>
class OptimizerWrap : public Napi::ObjectWrap<Derived> {
 public:
  explicit OptimizerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Derived>(info) {}

  // Defines the JS class with the shared methods and Derived's state methods.
  static Napi::Function Define(Napi::Env env, const char* className) {
    using W = Napi::ObjectWrap<Derived>;
    return W::DefineClass(env, className,
                          {W::InstanceMethod("step", &Derived::Step), W::InstanceMethod("zeroGrad", &Derived::ZeroGrad),
                           W::InstanceMethod("getLr", &Derived::GetLr), W::InstanceMethod("setLr", &Derived::SetLr),
                           W::InstanceMethod("getState", &Derived::GetState), W::InstanceMethod("setState", &Derived::SetState)});
  }

  std::shared_ptr<Optimizer> base;

 protected:
  static std::string name(const char* method) { return std::string(Derived::kName) + "." + method; }

  // A running trainEpoch updates this optimizer's parameters and state on the training thread.
  void ensureFree(Napi::Env env, const char* method) const {
    if (isLocked(base.get())) throwError(env, inUseMessage(name(method), "this optimizer"));
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      ensureFree(info.Env(), "step");
      base->step();
      return info.Env().Undefined();
    });
  }
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    ensureFree(info.Env(), "zeroGrad");
    base->zeroGrad();
    return info.Env().Undefined();
  }
  // The learning rate is a plain value the epoch only reads: reading it is harmless.
  Napi::Value GetLr(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), base->lr); }
  Napi::Value SetLr(const Napi::CallbackInfo& info) {
    return guard(info.Env(), [&]() -> Napi::Value {
      ensureFree(info.Env(), "setLr");
      js::Value v = js::Args(info, name("setLr"))(0, "lr");
      double lr = v.finite();
      if (lr < 0) v.failRange("a finite number >= 0");
      base->lr = lr;
      return info.Env().Undefined();
    });
  }
};

class AdamWrap : public OptimizerWrap<AdamWrap> {
 public:
  static constexpr const char* kName = "Adam";
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = Define(env, "NativeAdam");
    addonData(env).adamCtor = Napi::Persistent(ctor);
    exports.Set("NativeAdam", ctor);
  }

  // new NativeAdam(params, { lr, beta1, beta2, eps, weightDecay, amsgrad, maximize, fused })
  explicit AdamWrap(const Napi::CallbackInfo& info) : OptimizerWrap(info) {
    auto env = info.Env();
    guard(env, [&] {
      js::Args args(info, kName);
      auto params = paramsFromJs(args(0, "params"), kName);
      js::Object o = args(1, "options").objectOrEmpty();
      double lr = o["lr"].finiteOr(1e-3), b1 = o["beta1"].finiteOr(0.9), b2 = o["beta2"].finiteOr(0.999);
      double eps = o["eps"].finiteOr(1e-8), wd = o["weightDecay"].finiteOr(0);
      bool amsgrad = o["amsgrad"].booleanOr(false), maximize = o["maximize"].booleanOr(false), fused = o["fused"].booleanOr(false);
      if (lr < 0) throwError(env, "Adam: invalid learning rate " + std::to_string(lr) + " (expected >= 0)");
      if (eps < 0) throwError(env, "Adam: invalid epsilon " + std::to_string(eps) + " (expected >= 0)");
      if (b1 < 0 || b1 >= 1) throwError(env, "Adam: invalid beta at index 0: " + std::to_string(b1) + " (expected 0 <= beta < 1)");
      if (b2 < 0 || b2 >= 1) throwError(env, "Adam: invalid beta at index 1: " + std::to_string(b2) + " (expected 0 <= beta < 1)");
      if (wd < 0) throwError(env, "Adam: invalid weight_decay " + std::to_string(wd) + " (expected >= 0)");
      adam = std::make_shared<Adam>(std::move(params), lr, b1, b2, eps, wd, amsgrad, maximize, fused);
      base = adam;
    });
  }

  // [{ step, expAvg, expAvgSq, maxExpAvgSq } | null] per parameter, as PyTorch's state_dict()['state']
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    ensureFree(env, "getState");
    auto arr = Napi::Array::New(env, adam->state.size());
    for (size_t i = 0; i < adam->state.size(); ++i) {
      const auto& st = adam->state[i];
      if (!st) {
        arr.Set(uint32_t(i), env.Null());
        continue;
      }
      auto o = Napi::Object::New(env);
      o.Set("step", st->stepCount());
      o.Set("expAvg", tensorOrNull(env, st->expAvg));
      o.Set("expAvgSq", tensorOrNull(env, st->expAvgSq));
      o.Set("maxExpAvgSq", tensorOrNull(env, st->maxExpAvgSq));
      arr.Set(uint32_t(i), o);
    }
    return arr;
  }

  // setState(index, { step, expAvg, expAvgSq, maxExpAvgSq? } | null): tensors are copied into fresh
  // storage on the parameter's device.
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureFree(env, "setState");
      js::Args args(info, name("setState"));
      size_t i = paramIndex(args(0, "index"), adam->state.size());
      js::Value state = args(1, "state");
      if (state.isNullish()) {
        adam->state[i].reset();
        ++adam->version;
        return env.Undefined();
      }
      js::Object o = state.object();
      const at::Tensor& p = adam->params()[i];
      AdamState st;
      st.step = double(o["step"].integer(js::kNonNegative));
      st.expAvg = stateTensor(o["expAvg"], p, true);
      st.expAvgSq = stateTensor(o["expAvgSq"], p, true);
      st.maxExpAvgSq = stateTensor(o["maxExpAvgSq"], p, false);
      adam->state[i] = st;
      ++adam->version;
      return env.Undefined();
    });
  }

  std::shared_ptr<Adam> adam;
};

class SgdWrap : public OptimizerWrap<SgdWrap> {
 public:
  static constexpr const char* kName = "SGD";
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = Define(env, "NativeSGD");
    addonData(env).sgdCtor = Napi::Persistent(ctor);
    exports.Set("NativeSGD", ctor);
  }

  // new NativeSGD(params, { lr, momentum, dampening, weightDecay, nesterov, maximize })
  explicit SgdWrap(const Napi::CallbackInfo& info) : OptimizerWrap(info) {
    auto env = info.Env();
    guard(env, [&] {
      js::Args args(info, kName);
      auto params = paramsFromJs(args(0, "params"), kName);
      js::Object o = args(1, "options").objectOrEmpty();
      double lr = o["lr"].finiteOr(1e-3), m = o["momentum"].finiteOr(0), damp = o["dampening"].finiteOr(0);
      double wd = o["weightDecay"].finiteOr(0);
      bool nesterov = o["nesterov"].booleanOr(false), maximize = o["maximize"].booleanOr(false);
      if (lr < 0) throwError(env, "SGD: invalid learning rate " + std::to_string(lr) + " (expected >= 0)");
      if (m < 0) throwError(env, "SGD: invalid momentum " + std::to_string(m) + " (expected >= 0)");
      if (nesterov && (m <= 0 || damp != 0)) throwError(env, "SGD: nesterov momentum requires a momentum and zero dampening");
      sgd = std::make_shared<SGD>(std::move(params), lr, m, damp, wd, nesterov, maximize);
      base = sgd;
    });
  }

  // [{ momentumBuffer } | null] per parameter
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    ensureFree(env, "getState");
    auto arr = Napi::Array::New(env, sgd->momentumBuffer.size());
    for (size_t i = 0; i < sgd->momentumBuffer.size(); ++i) {
      if (!sgd->momentumBuffer[i].defined()) {
        arr.Set(uint32_t(i), env.Null());
        continue;
      }
      auto o = Napi::Object::New(env);
      o.Set("momentumBuffer", TensorWrap::New(env, sgd->momentumBuffer[i]));
      arr.Set(uint32_t(i), o);
    }
    return arr;
  }

  // setState(index, { momentumBuffer? } | null)
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      ensureFree(env, "setState");
      js::Args args(info, name("setState"));
      size_t i = paramIndex(args(0, "index"), sgd->momentumBuffer.size());
      js::Value state = args(1, "state");
      sgd->momentumBuffer[i] = state.isNullish() ? at::Tensor() : stateTensor(state.object()["momentumBuffer"], sgd->params()[i], false);
      ++sgd->version;  // a new buffer: a captured CUDA graph still updates the old one
      return env.Undefined();
    });
  }

  std::shared_ptr<SGD> sgd;
};

}  // namespace

std::shared_ptr<Optimizer> optimizerFromJs(const js::Value& v) {
  auto& d = addonData(v.env());
  if (v.raw().IsObject()) {
    auto o = v.raw().As<Napi::Object>();
    if (o.InstanceOf(d.adamCtor.Value())) return AdamWrap::Unwrap(o)->base;
    if (o.InstanceOf(d.sgdCtor.Value())) return SgdWrap::Unwrap(o)->base;
  }
  v.fail("an optimizer (optim.Adam or optim.SGD)");
}

void InitOptim(Napi::Env env, Napi::Object exports) {
  AdamWrap::Init(env, exports);
  SgdWrap::Init(env, exports);
}

}  // namespace ltg
