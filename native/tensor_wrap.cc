#include "tensor_wrap.h"

#include <cstring>
#include <memory>
#include <sstream>

#include "addon_data.h"
#include "autograd.h"
#include "epoch_lock.h"
#include "errors.h"
#include "js_args.h"

namespace ltg {

namespace {

std::string shapeStr(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

}  // namespace

void TensorWrap::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeTensor",
                                    {
                                        InstanceMethod<&TensorWrap::Dispose>("dispose"),
                                        InstanceMethod<&TensorWrap::IsDisposed>("isDisposed"),
                                        InstanceMethod<&TensorWrap::Shape>("shape"),
                                        InstanceMethod<&TensorWrap::Dtype>("dtype"),
                                        InstanceMethod<&TensorWrap::Device>("device"),
                                        InstanceMethod<&TensorWrap::RequiresGrad>("requiresGrad"),
                                        InstanceMethod<&TensorWrap::SetRequiresGrad>("setRequiresGrad"),
                                        InstanceMethod<&TensorWrap::Grad>("grad"),
                                        InstanceMethod<&TensorWrap::SetGrad>("setGrad"),
                                        InstanceMethod<&TensorWrap::Backward>("backward"),
                                        InstanceMethod<&TensorWrap::Item>("item"),
                                        InstanceMethod<&TensorWrap::ToTypedArray>("toTypedArray"),
                                        InstanceMethod<&TensorWrap::IsLeaf>("isLeaf"),
                                        InstanceMethod<&TensorWrap::SameAs>("sameAs"),
                                        InstanceMethod<&TensorWrap::Nbytes>("nbytes"),
                                    });
  addonData(env).tensorCtor = Napi::Persistent(ctor);
  addonData(env).liveTensor = &TensorWrap::LiveTensor;
  // The disposed handle: no tensor, alive as long as the env.
  Napi::Object disposed = ctor.New({});
  ObjectWrap::Unwrap(disposed)->release();
  addonData(env).disposedTensor = Napi::Persistent(disposed);
  exports.Set("NativeTensor", ctor);
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info), env_(info.Env()) {}

TensorWrap::~TensorWrap() { release(); }

void TensorWrap::reset(at::Tensor t) {
  release();
  t_ = std::move(t);
  disposed_ = false;
  // Bytes this handle keeps alive (a view reports its own extent, not its whole storage).
  if (t_.defined() && t_.device().is_cpu()) {
    reported_ = static_cast<int64_t>(t_.numel() * t_.element_size());
    if (reported_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env_, reported_);
  }
}

void TensorWrap::release() {
  if (reported_ > 0) Napi::MemoryManagement::AdjustExternalMemory(env_, -reported_);
  reported_ = 0;
  t_ = at::Tensor();
  disposed_ = true;
}

Napi::Object TensorWrap::New(Napi::Env env, at::Tensor t) {
  Napi::Object obj = addonData(env).tensorCtor.New({});
  Unwrap(obj)->reset(std::move(t));
  return obj;
}

TensorWrap* TensorWrap::Unwrap(Napi::Object wrapper) {
  napi_env env = wrapper.Env();
  void* self = nullptr;
  napi_status status = napi_unwrap(env, wrapper, &self);
  if (status == napi_invalid_arg) return ObjectWrap::Unwrap(addonData(env).disposedTensor.Value());  // no native object: disposed
  NAPI_THROW_IF_FAILED(env, status, nullptr);
  return static_cast<TensorWrap*>(self);
}

const at::Tensor& TensorWrap::LiveTensor(const Napi::Object& handle) { return Unwrap(handle)->live(handle.Env()); }

const at::Tensor& TensorWrap::live(Napi::Env env) const {
  if (disposed_ || !t_.defined()) throwError(env, "this tensor was disposed and cannot be used again");
  return t_;
}

const at::Tensor& TensorWrap::usable(Napi::Env env, const char* what) const {
  const at::Tensor& t = live(env);
  if (isLocked(t)) throwError(env, inUseMessage(what));
  return t;
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  release();
  // Free this object (and Node-API's reference to it) now, not in the GC finalizer: Node-API runs
  // finalizers on a later event-loop turn, so in a synchronous loop these small leftovers pile up
  // between the tensors' buffers in the malloc heap and keep freed buffers from being reused (RSS grew
  // by ~750 kB per step at 256x256). napi_remove_wrap hands ownership back from the JS object; the
  // disposed handle answers the bare shell's calls from then on.
  std::unique_ptr<TensorWrap> self;
  if (napi_remove_wrap(info.Env(), info.This(), nullptr) == napi_ok) self.reset(this);
  return info.Env().Undefined();
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), disposed_); }

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto& t = live(env);
  auto arr = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) arr.Set(uint32_t(i), Napi::Number::New(env, double(t.size(i))));
  return arr;
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), js::dtypeName(live(info.Env()).scalar_type()));
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), live(info.Env()).device().str()); }

Napi::Value TensorWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  // An epoch flips requires_grad of D's parameters during G's update: not harmless metadata.
  return Napi::Boolean::New(info.Env(), usable(info.Env(), "requiresGrad").requires_grad());
}

Napi::Value TensorWrap::SetRequiresGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    bool on = js::Args(info, "setRequiresGrad")(0, "requiresGrad").boolean();
    usable(env, "setRequiresGrad").set_requires_grad(on);
    return env.Undefined();
  });
}

Napi::Value TensorWrap::Grad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const auto& g = usable(env, "grad").grad();
  if (!g.defined()) return env.Null();
  return New(env, g);
}

// setGrad(grad | null): checked as PyTorch's `x.grad = g` (the fused optimizers then trust the shape).
Napi::Value TensorWrap::SetGrad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    auto& t = const_cast<at::Tensor&>(usable(env, "setGrad"));
    js::Value arg = js::Args(info, "setGrad")(0, "grad");
    // Only null clears: undefined is a missing value (the facade's `x.grad = 'abc'` arrives as one).
    if (!arg.raw().IsNull() && !js::isTensor(arg.raw())) arg.fail("a Tensor or null");
    at::Tensor g = arg.tensorOrNone();
    if (g.defined()) {
      if (g.is_same(t)) throwError(env, "can't assign Variable as its own grad");
      if (g.scalar_type() != t.scalar_type())
        throwType(env, "assigned grad has data of a different type: the grad is " + js::dtypeName(g.scalar_type()) + ", the tensor " +
                           js::dtypeName(t.scalar_type()));
      if (g.device() != t.device())
        throwError(env, "assigned grad has data located on a different device: the grad is on " + g.device().str() + ", the tensor on " +
                            t.device().str());
      if (g.sizes() != t.sizes())
        throwError(
            env, "assigned grad has data of a different size: the grad is " + shapeStr(g.sizes()) + ", the tensor " + shapeStr(t.sizes()));
    }
    t.mutable_grad() = g;
    return env.Undefined();
  });
}

// backward(gradient?, retainGraph?, createGraph?): retainGraph defaults to createGraph, as in PyTorch.
Napi::Value TensorWrap::Backward(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const auto& t = usable(env, "backward()");
    if (graphReachesLocked(t)) throwError(env, inUseMessage("backward()", "a tensor whose gradient it would write"));
    if (!t.requires_grad())
      throwError(env,
                 "backward(): this tensor does not require grad and has no grad_fn (was it computed under noGrad, or from tensors without "
                 "requiresGrad?)");
    js::Args args(info, "backward");
    at::Tensor grad = args(0, "gradient").tensorOrNone();
    if (!grad.defined() && t.numel() != 1)
      throwError(env, "backward(): grad can be implicitly created only for scalar outputs, got shape " + shapeStr(t.sizes()));
    bool create = args(2, "createGraph").booleanOr(false);
    bool retain = args(1, "retainGraph").booleanOr(create);
    ltg::backward(t, grad, retain, create);
    return env.Undefined();
  });
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    const auto& t = usable(env, "item()");
    if (t.numel() != 1)
      throwError(env, "item(): a Tensor with " + std::to_string(t.numel()) + " elements (shape " + shapeStr(t.sizes()) +
                          ") cannot be converted to a number");
    if (t.scalar_type() == at::kBool) return Napi::Boolean::New(env, t.item<bool>());
    return Napi::Number::New(env, t.item<double>());
  });
}

// Copies the data out (contiguous, CPU) into a fresh typed array of the matching element type.
Napi::Value TensorWrap::ToTypedArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    at::Tensor t = usable(env, "toTypedArray()").detach().to(at::kCPU).contiguous();
    size_t n = size_t(t.numel());
    auto copy = [&](auto typed) {
      std::memcpy(typed.Data(), t.data_ptr(), n * t.element_size());
      return typed;
    };
    switch (t.scalar_type()) {
      case at::kFloat: return copy(Napi::Float32Array::New(env, n));
      case at::kDouble: return copy(Napi::Float64Array::New(env, n));
      case at::kLong: return copy(Napi::BigInt64Array::New(env, n));
      case at::kInt: return copy(Napi::Int32Array::New(env, n));
      case at::kShort: return copy(Napi::Int16Array::New(env, n));
      case at::kChar: return copy(Napi::Int8Array::New(env, n));
      case at::kByte:
      case at::kBool: return copy(Napi::Uint8Array::New(env, n));
      case at::kHalf:
      case at::kBFloat16: {
        at::Tensor f = t.to(at::kFloat);
        auto out = Napi::Float32Array::New(env, n);
        std::memcpy(out.Data(), f.data_ptr(), n * sizeof(float));
        return out;
      }
      default: throwType(env, "toTypedArray: unsupported dtype " + js::dtypeName(t.scalar_type()));
    }
  });
}

Napi::Value TensorWrap::IsLeaf(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), live(info.Env()).is_leaf()); }

Napi::Value TensorWrap::SameAs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!js::isTensor(info[0])) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(env, live(env).is_same(Unwrap(info[0].As<Napi::Object>())->live(env)));
}

Napi::Value TensorWrap::Nbytes(const Napi::CallbackInfo& info) {
  const auto& t = live(info.Env());
  return Napi::Number::New(info.Env(), double(t.numel() * t.element_size()));
}

namespace {

// fromTypedArray(data: TypedArray, shape: number[], dtype: string, device: string)
Napi::Value FromTypedArray(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args args(info, "tensor");
    js::Value data = args(0, "data");
    if (!data.raw().IsTypedArray()) data.fail("a TypedArray");
    auto ta = data.raw().As<Napi::TypedArray>();
    std::vector<int64_t> shape = args(1, "shape").integers(js::kNonNegative);
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    c10::ScalarType src;
    switch (ta.TypedArrayType()) {
      case napi_float32_array: src = at::kFloat; break;
      case napi_float64_array: src = at::kDouble; break;
      case napi_bigint64_array: src = at::kLong; break;
      case napi_int32_array: src = at::kInt; break;
      case napi_int16_array: src = at::kShort; break;
      case napi_int8_array: src = at::kChar; break;
      case napi_uint8_array:
      case napi_uint8_clamped_array: src = at::kByte; break;
      default:
        throwType(env,
                  "tensor data: unsupported TypedArray type (use Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, "
                  "Int8Array or Uint8Array)");
    }
    if (int64_t(ta.ElementLength()) != numel)
      throwError(env, "tensor data has " + std::to_string(ta.ElementLength()) + " elements but shape " + shapeStr(shape) + " needs " +
                          std::to_string(numel));
    c10::ScalarType dst = args(2, "dtype").dtype();
    c10::Device dev = args(3, "device").device();
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(src));
    if (numel > 0)
      std::memcpy(t.data_ptr(), static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset(), size_t(numel) * t.element_size());
    if (src == at::kByte && dst == at::kBool) t = t.ne(0);
    if (t.scalar_type() != dst || dev != t.device()) t = t.to(dev, dst);
    return TensorWrap::New(env, std::move(t));
  });
}

}  // namespace

void InitTensorFunctions(Napi::Env env, Napi::Object exports) {
  exports.Set("fromTypedArray", Napi::Function::New<FromTypedArray>(env, "fromTypedArray"));
}

}  // namespace ltg

namespace ltg {
void InitTensorModule(Napi::Env env, Napi::Object exports) {
  TensorWrap::Init(env, exports);
  InitTensorFunctions(env, exports);
}
}  // namespace ltg
