#include "optim_wrap.h"

#include "addon_data.h"
#include "bindings.h"
#include "errors.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

std::vector<at::Tensor> paramsFromJs(Napi::Env env, const Napi::Value& v, const char* who) {
  if (!v.IsArray()) throwType(env, std::string(who) + ": params must be an array of tensors");
  auto a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    at::Tensor t = TensorWrap::Get(env, a.Get(i), (std::string(who) + " params[" + std::to_string(i) + "]").c_str());
    if (!t.is_leaf()) throwError(env, std::string(who) + ": params[" + std::to_string(i) + "] is not a leaf tensor (optimizers update leaves)");
    if (!at::isFloatingType(t.scalar_type())) throwType(env, std::string(who) + ": params[" + std::to_string(i) + "] has dtype " + dtypeName(t.scalar_type()) + ", expected a floating dtype");
    out.push_back(t);
  }
  return out;
}

double num(Napi::Env env, const Napi::Object& o, const char* key, double dflt, const char* who) {
  if (!o.Has(key) || o.Get(key).IsUndefined()) return dflt;
  Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throwType(env, std::string(who) + ": option " + key + " must be a finite number, got " + v.ToString().Utf8Value());
  return v.As<Napi::Number>().DoubleValue();
}

bool flag(const Napi::Object& o, const char* key) { return o.Has(key) && o.Get(key).ToBoolean().Value(); }

Napi::Value tensorOrNull(Napi::Env env, const at::Tensor& t) { return t.defined() ? Napi::Value(TensorWrap::New(env, t)) : env.Null(); }

at::Tensor tensorOrUndef(Napi::Env env, const Napi::Value& v, const char* what) {
  return v.IsNull() || v.IsUndefined() ? at::Tensor() : TensorWrap::Get(env, v, what);
}

// Methods shared by both optimizer handles (N-API needs them as members of the wrapped class itself).
#define LTG_OPTIM_COMMON_METHODS                                                                              \
  std::shared_ptr<Optimizer> base;                                                                           \
  Napi::Value Step(const Napi::CallbackInfo& info) {                                                         \
    return guard(info.Env(), [&]() -> Napi::Value {                                                          \
      base->step();                                                                                          \
      return info.Env().Undefined();                                                                         \
    });                                                                                                      \
  }                                                                                                          \
  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {                                                     \
    base->zeroGrad();                                                                                        \
    return info.Env().Undefined();                                                                           \
  }                                                                                                          \
  Napi::Value GetLr(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), base->lr); }      \
  Napi::Value SetLr(const Napi::CallbackInfo& info) {                                                        \
    double v = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;                          \
    if (!(v >= 0) || !std::isfinite(v)) throwType(info.Env(), "lr must be a finite number >= 0, got " + info[0].ToString().Utf8Value()); \
    base->lr = v;                                                                                            \
    return info.Env().Undefined();                                                                           \
  }

class AdamWrap : public Napi::ObjectWrap<AdamWrap> {
 public:
  LTG_OPTIM_COMMON_METHODS
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = DefineClass(env, "NativeAdam",
                            {InstanceMethod<&AdamWrap::Step>("step"), InstanceMethod<&AdamWrap::ZeroGrad>("zeroGrad"),
                             InstanceMethod<&AdamWrap::GetLr>("getLr"), InstanceMethod<&AdamWrap::SetLr>("setLr"),
                             InstanceMethod<&AdamWrap::GetState>("getState"), InstanceMethod<&AdamWrap::SetState>("setState")});
    addonData(env).adamCtor = Napi::Persistent(ctor);
    exports.Set("NativeAdam", ctor);
  }

  // new NativeAdam(params, { lr, beta1, beta2, eps, weightDecay, amsgrad, maximize })
  explicit AdamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AdamWrap>(info) {
    auto env = info.Env();
    guard(env, [&] {
      auto params = paramsFromJs(env, info[0], "Adam");
      Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
      double lr = num(env, o, "lr", 1e-3, "Adam"), b1 = num(env, o, "beta1", 0.9, "Adam"), b2 = num(env, o, "beta2", 0.999, "Adam");
      double eps = num(env, o, "eps", 1e-8, "Adam"), wd = num(env, o, "weightDecay", 0, "Adam");
      if (lr < 0) throwError(env, "Adam: invalid learning rate " + std::to_string(lr) + " (expected >= 0)");
      if (eps < 0) throwError(env, "Adam: invalid epsilon " + std::to_string(eps) + " (expected >= 0)");
      if (b1 < 0 || b1 >= 1) throwError(env, "Adam: invalid beta at index 0: " + std::to_string(b1) + " (expected 0 <= beta < 1)");
      if (b2 < 0 || b2 >= 1) throwError(env, "Adam: invalid beta at index 1: " + std::to_string(b2) + " (expected 0 <= beta < 1)");
      if (wd < 0) throwError(env, "Adam: invalid weight_decay " + std::to_string(wd) + " (expected >= 0)");
      adam = std::make_shared<Adam>(std::move(params), lr, b1, b2, eps, wd, flag(o, "amsgrad"), flag(o, "maximize"), flag(o, "fused"));
      base = adam;
    });
  }

  // [{ step, expAvg, expAvgSq, maxExpAvgSq } | null] per parameter, as PyTorch's state_dict()['state']
  Napi::Value GetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
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

  // setState(index, state | null): tensors are copied into fresh storage on the parameter's device.
  Napi::Value SetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      double d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || size_t(d) >= adam->state.size()) throwType(env, "Adam.setState: parameter index " + info[0].ToString().Utf8Value() + " out of range (0.." + std::to_string(adam->state.size()) + ")");
      size_t i = size_t(d);
      if (info[1].IsNull() || info[1].IsUndefined()) {
        adam->state[i].reset();
        ++adam->version;
        return env.Undefined();
      }
      auto o = info[1].As<Napi::Object>();
      const at::Tensor& p = adam->params()[i];
      auto load = [&](const char* key) {
        at::Tensor t = tensorOrUndef(env, o.Get(key), key);
        if (!t.defined()) return t;
        if (t.sizes() != p.sizes()) throwError(env, std::string("Adam.setState: ") + key + " of parameter " + std::to_string(i) + " has shape " + c10::str(t.sizes()) + ", expected " + c10::str(p.sizes()));
        return t.detach().to(p.device(), p.scalar_type(), false, true);
      };
      AdamState st;
      st.step = num(env, o, "step", 0, "Adam.setState");
      st.expAvg = load("expAvg");
      st.expAvgSq = load("expAvgSq");
      st.maxExpAvgSq = load("maxExpAvgSq");
      if (!st.expAvg.defined() || !st.expAvgSq.defined()) throwError(env, "Adam.setState: expAvg and expAvgSq are required");
      adam->state[i] = st;
      ++adam->version;
      return env.Undefined();
    });
  }

  std::shared_ptr<Adam> adam;
};

class SgdWrap : public Napi::ObjectWrap<SgdWrap> {
 public:
  LTG_OPTIM_COMMON_METHODS
  static void Init(Napi::Env env, Napi::Object exports) {
    auto ctor = DefineClass(env, "NativeSGD",
                            {InstanceMethod<&SgdWrap::Step>("step"), InstanceMethod<&SgdWrap::ZeroGrad>("zeroGrad"),
                             InstanceMethod<&SgdWrap::GetLr>("getLr"), InstanceMethod<&SgdWrap::SetLr>("setLr"),
                             InstanceMethod<&SgdWrap::GetState>("getState"), InstanceMethod<&SgdWrap::SetState>("setState")});
    addonData(env).sgdCtor = Napi::Persistent(ctor);
    exports.Set("NativeSGD", ctor);
  }

  explicit SgdWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SgdWrap>(info) {
    auto env = info.Env();
    guard(env, [&] {
      auto params = paramsFromJs(env, info[0], "SGD");
      Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
      double lr = num(env, o, "lr", 1e-3, "SGD"), m = num(env, o, "momentum", 0, "SGD"), damp = num(env, o, "dampening", 0, "SGD");
      double wd = num(env, o, "weightDecay", 0, "SGD");
      bool nesterov = flag(o, "nesterov");
      if (lr < 0) throwError(env, "SGD: invalid learning rate " + std::to_string(lr) + " (expected >= 0)");
      if (m < 0) throwError(env, "SGD: invalid momentum " + std::to_string(m) + " (expected >= 0)");
      if (nesterov && (m <= 0 || damp != 0)) throwError(env, "SGD: nesterov momentum requires a momentum and zero dampening");
      sgd = std::make_shared<SGD>(std::move(params), lr, m, damp, wd, nesterov, flag(o, "maximize"));
      base = sgd;
    });
  }

  Napi::Value GetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
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

  Napi::Value SetState(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      double d = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
      if (!(d >= 0) || size_t(d) >= sgd->momentumBuffer.size()) throwType(env, "SGD.setState: parameter index out of range");
      size_t i = size_t(d);
      if (info[1].IsNull() || info[1].IsUndefined()) {
        sgd->momentumBuffer[i] = at::Tensor();
        return env.Undefined();
      }
      const at::Tensor& p = sgd->params()[i];
      at::Tensor t = tensorOrUndef(env, info[1].As<Napi::Object>().Get("momentumBuffer"), "momentumBuffer");
      if (t.defined() && t.sizes() != p.sizes()) throwError(env, "SGD.setState: momentumBuffer of parameter " + std::to_string(i) + " has shape " + c10::str(t.sizes()) + ", expected " + c10::str(p.sizes()));
      sgd->momentumBuffer[i] = t.defined() ? t.detach().to(p.device(), p.scalar_type(), false, true) : t;
      return env.Undefined();
    });
  }

  std::shared_ptr<SGD> sgd;
};

}  // namespace

std::shared_ptr<Optimizer> optimizerFromJs(Napi::Env env, const Napi::Value& v, const char* what) {
  auto& d = addonData(env);
  if (v.IsObject()) {
    auto o = v.As<Napi::Object>();
    if (o.InstanceOf(d.adamCtor.Value())) return AdamWrap::Unwrap(o)->base;
    if (o.InstanceOf(d.sgdCtor.Value())) return SgdWrap::Unwrap(o)->base;
  }
  throwType(env, std::string(what) + ": expected an optimizer (optim.Adam or optim.SGD)");
}

void InitOptim(Napi::Env env, Napi::Object exports) {
  AdamWrap::Init(env, exports);
  SgdWrap::Init(env, exports);
}

}  // namespace ltg
