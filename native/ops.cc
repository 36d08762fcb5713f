#include "bindings.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <string>
#include <unordered_set>

#include "addon_data.h"
#include "epoch_lock.h"
#include "errors.h"
#include "js_args.h"
#include "on_train_thread.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {
thread_local bool opsOnTrain = false;
}  // namespace

bool opsOnTrainThread() { return opsOnTrain; }
bool setOpsOnTrainThread(bool on) {
  bool was = opsOnTrain;
  opsOnTrain = on;
  return was;
}

namespace {

class Converter {
 public:
  Converter(Napi::Env env, const c10::OperatorHandle& op) : env_(env), name_(op.schema().name()) {}

  // Argument `arg` labelled "aten::add(other)".
  js::Value arg(const Napi::Value& v, const std::string& arg) const { return js::Value(env_, v, name_ + "(" + arg + ")"); }

  // Converts by the argument's real type: dtype, layout and memory-format arguments are ints to the
  // dispatcher but take their names here, through the enum readers.
  c10::IValue toIValue(const js::Value& v, const c10::TypePtr& type) {
    using K = c10::TypeKind;
    switch (type->kind()) {
      case K::OptionalType:
        if (v.isNullish()) return c10::IValue();
        return toIValue(v, type->castRaw<c10::OptionalType>()->getElementType());
      case K::TensorType: return v.tensor();
      case K::IntType:
      case K::SymIntType: return c10::IValue(v.integer());
      case K::FloatType:
      case K::SymFloatType: return c10::IValue(v.number());
      case K::BoolType:
      case K::SymBoolType: return c10::IValue(v.boolean());
      case K::NumberType: {  // Scalar: integer-valued numbers are int scalars, as Python's 2 vs 2.0
        if (v.raw().IsBoolean()) return c10::IValue(v.boolean());
        double d = v.number();
        if (std::isfinite(d) && d == double(int64_t(d)) && std::abs(d) <= double(js::kMaxSafeInteger)) return c10::IValue(int64_t(d));
        return c10::IValue(d);
      }
      case K::StringType: return c10::IValue(v.string());
      case K::ScalarTypeType: return c10::IValue(int64_t(v.dtype()));
      case K::DeviceObjType: return c10::IValue(v.device());
      case K::LayoutType: return c10::IValue(int64_t(v.oneOf<c10::Layout>({{"strided", c10::kStrided}})));
      case K::MemoryFormatType:
        return c10::IValue(int64_t(v.oneOf<c10::MemoryFormat>({{"contiguous", c10::MemoryFormat::Contiguous},
                                                               {"preserve", c10::MemoryFormat::Preserve},
                                                               {"channels_last", c10::MemoryFormat::ChannelsLast},
                                                               {"channels_last_3d", c10::MemoryFormat::ChannelsLast3d}})));
      case K::ListType: {
        auto elem = type->castRaw<c10::ListType>()->getElementType();
        if (elem->kind() == K::IntType || elem->kind() == K::SymIntType) {
          if (v.raw().IsNumber() || v.raw().IsBigInt())
            return c10::IValue(std::vector<int64_t>{v.integer()});  // int[1] accepts a bare int, as in Python
          if (!v.raw().IsArray()) v.fail("an array of integers");
          return c10::IValue(v.integers());
        }
        uint32_t n = v.array().Length();
        if (elem->kind() == K::TensorType) {
          std::vector<at::Tensor> out;
          for (uint32_t i = 0; i < n; ++i) out.push_back(v.at(i).tensor());
          return c10::IValue(out);
        }
        if (elem->kind() == K::OptionalType) {
          c10::List<std::optional<at::Tensor>> out;
          for (uint32_t i = 0; i < n; ++i) {
            at::Tensor t = v.at(i).tensorOrNone();
            if (t.defined()) out.push_back(t);
            else out.push_back(std::nullopt);
          }
          return c10::IValue(out);
        }
        if (elem->kind() == K::FloatType) {
          std::vector<double> out;
          for (uint32_t i = 0; i < n; ++i) out.push_back(v.at(i).number());
          return c10::IValue(out);
        }
        if (elem->kind() == K::BoolType) {
          c10::List<bool> out;
          for (uint32_t i = 0; i < n; ++i) out.push_back(v.at(i).boolean());
          return c10::IValue(out);
        }
        throwType(env_, v.label() + ": unsupported list type " + type->str());
      }
      default:
        if (v.isNullish()) return c10::IValue();
        throwType(env_, v.label() + ": unsupported argument type " + type->str());
    }
  }

  Napi::Value toJs(const c10::IValue& v) {
    if (v.isTensor()) {
      const auto& t = v.toTensor();
      if (!t.defined()) return env_.Null();
      return TensorWrap::New(env_, t);
    }
    if (v.isNone()) return env_.Null();
    if (v.isInt()) return Napi::Number::New(env_, double(v.toInt()));
    if (v.isDouble()) return Napi::Number::New(env_, v.toDouble());
    if (v.isBool()) return Napi::Boolean::New(env_, v.toBool());
    if (v.isTensorList()) {
      auto l = v.toTensorList();
      auto arr = Napi::Array::New(env_, l.size());
      for (size_t i = 0; i < l.size(); ++i) arr.Set(uint32_t(i), TensorWrap::New(env_, l.get(i)));
      return arr;
    }
    if (v.isTuple()) {
      const auto& elems = v.toTupleRef().elements();
      auto arr = Napi::Array::New(env_, elems.size());
      for (size_t i = 0; i < elems.size(); ++i) arr.Set(uint32_t(i), toJs(elems[i]));
      return arr;
    }
    if (v.isIntList()) {
      auto l = v.toIntVector();
      auto arr = Napi::Array::New(env_, l.size());
      for (size_t i = 0; i < l.size(); ++i) arr.Set(uint32_t(i), Napi::Number::New(env_, double(l[i])));
      return arr;
    }
    if (v.isScalar()) return Napi::Number::New(env_, v.toScalar().toDouble());
    throwType(env_, name_ + ": unsupported return type " + v.tagKind());
  }

 private:
  Napi::Env env_;
  std::string name_;
};

// How an operator uses the default random generators: not at all, always (it takes a Generator, which
// JS leaves none, or it is one of the sampling factories' overloads without one), or only in training
// (dropout: train true and p > 0).
enum class Draws { None, Always, Dropout };

Draws drawsOf(const c10::FunctionSchema& schema) {
  for (const auto& a : schema.arguments()) {
    const c10::TypePtr& t = a.real_type();
    c10::TypePtr inner = t->kind() == c10::TypeKind::OptionalType ? t->castRaw<c10::OptionalType>()->getElementType() : t;
    if (inner->kind() == c10::TypeKind::GeneratorType) return Draws::Always;
  }
  static const std::unordered_set<std::string> always{"aten::rand",      "aten::randn",      "aten::randint",     "aten::randperm",
                                                      "aten::rand_like", "aten::randn_like", "aten::randint_like"};
  static const std::unordered_set<std::string> dropout{
      "aten::dropout",       "aten::dropout_",       "aten::feature_dropout",       "aten::feature_dropout_",
      "aten::alpha_dropout", "aten::alpha_dropout_", "aten::feature_alpha_dropout", "aten::feature_alpha_dropout_",
      "aten::native_dropout"};
  if (always.count(schema.name())) return Draws::Always;
  if (dropout.count(schema.name())) return Draws::Dropout;
  return Draws::None;
}

// The device whose default generator this call draws from, if it draws: its first tensor's, else its
// `device` argument's ('cpu' when none).
std::optional<c10::Device> drawDevice(const c10::FunctionSchema& schema, Draws draws, const torch::jit::Stack& stack) {
  if (draws == Draws::None) return std::nullopt;
  const auto& params = schema.arguments();
  std::optional<c10::Device> tensorDevice, deviceArg;
  for (size_t i = 0; i < params.size() && i < stack.size(); ++i) {
    const c10::IValue& v = stack[i];
    const std::string& name = params[i].name();
    if (draws == Draws::Dropout && ((name == "train" && v.isBool() && !v.toBool()) || (name == "p" && v.isDouble() && v.toDouble() == 0)))
      return std::nullopt;
    if (!tensorDevice && v.isTensor() && v.toTensor().defined()) tensorDevice = v.toTensor().device();
    if (name == "device" && v.isDevice()) deviceArg = v.toDevice();
  }
  if (tensorDevice) return tensorDevice;
  return deviceArg ? *deviceArg : c10::Device(c10::kCPU);
}

// One operator overload, looked up once and kept by the TS facade.
class OpHandle : public Napi::ObjectWrap<OpHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor =
        DefineClass(env, "NativeOp", {InstanceMethod<&OpHandle::Call>("call"), InstanceMethod<&OpHandle::Schema>("schema")});
    addonData(env).opCtor = Napi::Persistent(ctor);
    exports.Set("NativeOp", ctor);
    exports.Set("op", Napi::Function::New<&OpHandle::Find>(env, "op"));
    exports.Set("setOpsOnTrainThread", Napi::Function::New<&OpHandle::SetOnTrainThread>(env, "setOpsOnTrainThread"));
  }

  explicit OpHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpHandle>(info) {}

  // op(name, overload) -> NativeOp
  static Napi::Value Find(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      js::Args args(info, "op");
      std::string name = args(0, "name").string();
      js::Value ov = args(1, "overload");
      std::string overload = ov.isUndefined() ? "" : ov.string();
      auto h = c10::Dispatcher::singleton().findSchema({name, overload});
      if (!h) throwError(env, "no operator " + name + (overload.empty() ? "" : "." + overload) + " in this LibTorch");
      Napi::Object obj = addonData(env).opCtor.New({});
      Unwrap(obj)->op_ = *h;
      Unwrap(obj)->draws_ = drawsOf(h->schema());
      return obj;
    });
  }

  // setOpsOnTrainThread(on) -> the previous setting (torch.onTrainingThread)
  static Napi::Value SetOnTrainThread(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      return Napi::Boolean::New(env, setOpsOnTrainThread(js::Args(info, "setOpsOnTrainThread")(0, "on").boolean()));
    });
  }

  // call(args: any[], kwargs?: Record<string, any>)
  Napi::Value Call(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!op_) throwError(env, "NativeOp: not bound to an operator (use op(name, overload))");
      const auto& schema = op_->schema();
      const auto& params = schema.arguments();
      js::Args in(info, schema.name());
      Napi::Array args = in(0, "args").array();
      Napi::Object kwargs = in(1, "kwargs").objectOrEmpty().raw();
      if (args.Length() > params.size())
        throwType(env, schema.name() + ": takes " + std::to_string(params.size()) + " arguments, got " + std::to_string(args.Length()));
      Converter conv(env, *op_);
      torch::jit::Stack stack;
      stack.reserve(params.size());
      for (size_t i = 0; i < params.size(); ++i) {
        const auto& p = params[i];
        Napi::Value v = env.Undefined();
        if (i < args.Length()) v = args.Get(uint32_t(i));
        else if (!kwargs.IsEmpty() && kwargs.Has(p.name())) v = kwargs.Get(p.name());
        if (v.IsUndefined()) {
          if (p.default_value()) {
            stack.push_back(*p.default_value());
            continue;
          }
          if (p.type()->kind() != c10::TypeKind::OptionalType) throwType(env, schema.name() + ": missing argument '" + p.name() + "'");
        }
        stack.push_back(conv.toIValue(conv.arg(v, p.name()), p.real_type()));
      }
      if (std::optional<c10::Device> d = drawDevice(schema, draws_, stack); d && isGeneratorLocked(*d))
        throwError(env, inUseMessage(schema.name(), generatorSubject(*d).c_str()));
      if (opsOnTrainThread()) {
        bool grad = c10::GradMode::is_enabled();
        onTrainThread(env, schema.name(), grad, [&] {
          op_->callBoxed(stack);
          return true;
        });
      } else {
        op_->callBoxed(stack);
      }
      if (stack.empty()) return env.Undefined();
      if (stack.size() == 1) return conv.toJs(stack[0]);
      auto arr = Napi::Array::New(env, stack.size());
      for (size_t i = 0; i < stack.size(); ++i) arr.Set(uint32_t(i), conv.toJs(stack[i]));
      return arr;
    });
  }

  Napi::Value Schema(const Napi::CallbackInfo& info) {
    if (!op_) return info.Env().Null();
    std::ostringstream o;
    o << op_->schema();
    return Napi::String::New(info.Env(), o.str());
  }

 private:
  std::optional<c10::OperatorHandle> op_;
  Draws draws_ = Draws::None;
};

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) { OpHandle::Init(env, exports); }

}  // namespace ltg
