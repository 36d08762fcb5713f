#include "bindings.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ATen.h>

#include "addon_data.h"
#include "errors.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

std::string describe(const Napi::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsArray()) return "an array";
  if (v.IsString()) return "'" + v.As<Napi::String>().Utf8Value() + "'";
  if (v.IsObject()) return "an object";
  return v.ToString().Utf8Value();
}

class Converter {
 public:
  Converter(Napi::Env env, const c10::OperatorHandle& op) : env_(env), name_(op.schema().name()) {}

  c10::IValue toIValue(const Napi::Value& v, const c10::TypePtr& type, const std::string& arg) {
    using K = c10::TypeKind;
    switch (type->kind()) {
      case K::OptionalType:
        if (v.IsNull() || v.IsUndefined()) return c10::IValue();
        return toIValue(v, type->castRaw<c10::OptionalType>()->getElementType(), arg);
      case K::TensorType:
        return TensorWrap::Get(env_, v, where(arg).c_str());
      case K::IntType:
      case K::SymIntType:
        return c10::IValue(toInt(v, arg));
      case K::FloatType:
      case K::SymFloatType:
        return c10::IValue(toDouble(v, arg));
      case K::BoolType:
      case K::SymBoolType:
        if (!v.IsBoolean()) fail(arg, "a boolean", v);
        return c10::IValue(v.As<Napi::Boolean>().Value());
      case K::NumberType: {  // Scalar: integer-valued numbers are int scalars, as Python's 2 vs 2.0
        if (v.IsBoolean()) return c10::IValue(v.As<Napi::Boolean>().Value());
        double d = toDouble(v, arg);
        if (std::isfinite(d) && d == double(int64_t(d)) && std::abs(d) < 9007199254740992.0) return c10::IValue(int64_t(d));
        return c10::IValue(d);
      }
      case K::StringType:
        if (!v.IsString()) fail(arg, "a string", v);
        return c10::IValue(v.As<Napi::String>().Utf8Value());
      case K::ScalarTypeType:
        if (v.IsString()) return c10::IValue(int64_t(parseDtype(env_, v.As<Napi::String>().Utf8Value())));
        return c10::IValue(toInt(v, arg));
      case K::DeviceObjType:
        if (!v.IsString()) fail(arg, "a device string", v);
        return c10::IValue(parseDevice(env_, v.As<Napi::String>().Utf8Value()));
      case K::LayoutType:
        return c10::IValue(int64_t(c10::kStrided));
      case K::MemoryFormatType:
        if (v.IsString() && v.As<Napi::String>().Utf8Value() == "contiguous") return c10::IValue(int64_t(c10::MemoryFormat::Contiguous));
        if (v.IsString() && v.As<Napi::String>().Utf8Value() == "preserve") return c10::IValue(int64_t(c10::MemoryFormat::Preserve));
        return c10::IValue(toInt(v, arg));
      case K::ListType: {
        auto elem = type->castRaw<c10::ListType>()->getElementType();
        if (elem->kind() == K::IntType || elem->kind() == K::SymIntType) {
          std::vector<int64_t> out;
          if (v.IsNumber()) out.push_back(toInt(v, arg));  // int[1] accepts a bare int, as in Python
          else if (v.IsArray()) {
            auto a = v.As<Napi::Array>();
            for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(toInt(a.Get(i), arg + "[" + std::to_string(i) + "]"));
          } else fail(arg, "an array of integers", v);
          return c10::IValue(out);
        }
        if (!v.IsArray()) fail(arg, "an array", v);
        auto a = v.As<Napi::Array>();
        if (elem->kind() == K::TensorType) {
          std::vector<at::Tensor> out;
          for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(TensorWrap::Get(env_, a.Get(i), where(arg + "[" + std::to_string(i) + "]").c_str()));
          return c10::IValue(out);
        }
        if (elem->kind() == K::OptionalType) {
          c10::List<std::optional<at::Tensor>> out;
          for (uint32_t i = 0; i < a.Length(); ++i) {
            Napi::Value e = a.Get(i);
            if (e.IsNull() || e.IsUndefined()) out.push_back(std::nullopt);
            else out.push_back(TensorWrap::Get(env_, e, where(arg).c_str()));
          }
          return c10::IValue(out);
        }
        if (elem->kind() == K::FloatType) {
          std::vector<double> out;
          for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(toDouble(a.Get(i), arg));
          return c10::IValue(out);
        }
        if (elem->kind() == K::BoolType) {
          c10::List<bool> out;
          for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).ToBoolean().Value());
          return c10::IValue(out);
        }
        throwType(env_, where(arg) + ": unsupported list type " + type->str());
      }
      default:
        if (v.IsNull() || v.IsUndefined()) return c10::IValue();
        throwType(env_, where(arg) + ": unsupported argument type " + type->str());
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
  std::string where(const std::string& arg) const { return name_ + "(" + arg + ")"; }

  [[noreturn]] void fail(const std::string& arg, const std::string& expected, const Napi::Value& v) {
    throwType(env_, where(arg) + ": expected " + expected + ", got " + describe(v));
  }

  double toDouble(const Napi::Value& v, const std::string& arg) {
    if (!v.IsNumber()) fail(arg, "a number", v);
    return v.As<Napi::Number>().DoubleValue();
  }

  int64_t toInt(const Napi::Value& v, const std::string& arg) {
    // ScalarType and MemoryFormat arguments are ints in the schema; accept their names.
    if (v.IsString()) {
      std::string s = v.As<Napi::String>().Utf8Value();
      if (s == "contiguous") return int64_t(c10::MemoryFormat::Contiguous);
      if (s == "preserve") return int64_t(c10::MemoryFormat::Preserve);
      return int64_t(parseDtype(env_, s));
    }
    if (v.IsBigInt()) {
      bool lossless;
      return v.As<Napi::BigInt>().Int64Value(&lossless);
    }
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != double(int64_t(d))) fail(arg, "an integer", v);
    return int64_t(d);
  }

  Napi::Env env_;
  std::string name_;
};

// One operator overload, looked up once and kept by the TS facade.
class OpHandle : public Napi::ObjectWrap<OpHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function ctor = DefineClass(env, "NativeOp", {InstanceMethod<&OpHandle::Call>("call"), InstanceMethod<&OpHandle::Schema>("schema")});
    addonData(env).opCtor = Napi::Persistent(ctor);
    exports.Set("NativeOp", ctor);
    exports.Set("op", Napi::Function::New<&OpHandle::Find>(env, "op"));
  }

  explicit OpHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<OpHandle>(info) {}

  // op(name, overload) -> NativeOp
  static Napi::Value Find(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!info[0].IsString()) throwType(env, "op(name): expected a string such as 'aten::add'");
      std::string name = info[0].As<Napi::String>().Utf8Value();
      std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
      auto h = c10::Dispatcher::singleton().findSchema({name, overload});
      if (!h) throwError(env, "no operator " + name + (overload.empty() ? "" : "." + overload) + " in this LibTorch");
      Napi::Object obj = addonData(env).opCtor.New({});
      Unwrap(obj)->op_ = *h;
      return obj;
    });
  }

  // call(args: any[], kwargs?: Record<string, any>)
  Napi::Value Call(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!op_) throwError(env, "NativeOp: not bound to an operator (use op(name, overload))");
      const auto& schema = op_->schema();
      const auto& params = schema.arguments();
      Napi::Array args = info[0].IsArray() ? info[0].As<Napi::Array>() : Napi::Array::New(env);
      Napi::Object kwargs = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object();
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
          if (p.type()->kind() != c10::TypeKind::OptionalType)
            throwType(env, schema.name() + ": missing argument '" + p.name() + "'");
        }
        stack.push_back(conv.toIValue(v, p.type(), p.name()));
      }
      op_->callBoxed(stack);
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
};

}  // namespace

void InitOps(Napi::Env env, Napi::Object exports) { OpHandle::Init(env, exports); }

}  // namespace ltg
