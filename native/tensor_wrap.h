// TensorWrap: the JS handle of one at::Tensor. dispose() frees the tensor and this native object at
// once, leaving a bare JS shell that V8 collects like any object; the GC finalizer frees handles that
// were never disposed. V8 is told how many bytes each handle keeps alive so that GC pressure reflects
// native memory.
#pragma once
#include <ATen/ATen.h>
#include <napi.h>

namespace ltg {

class TensorWrap : public Napi::ObjectWrap<TensorWrap> {
 public:
  static void Init(Napi::Env env, Napi::Object exports);
  static Napi::Object New(Napi::Env env, at::Tensor t);
  // Hides ObjectWrap::Unwrap, which node-addon-api's method callbacks call as T::Unwrap: a disposed
  // handle's shell has no native object, and its calls reach the env's one disposed handle.
  static TensorWrap* Unwrap(Napi::Object wrapper);

  explicit TensorWrap(const Napi::CallbackInfo& info);
  ~TensorWrap() override;

  const at::Tensor& tensor() const { return t_; }

 private:
  // AddonData::liveTensor: what js::Value::tensor() reads (arguments are read through it).
  static const at::Tensor& LiveTensor(const Napi::Object& handle);
  void reset(at::Tensor t);
  void release();
  const at::Tensor& live(Napi::Env env) const;
  // live(), and not locked by a running trainEpoch (epoch_lock.h): for every method that reads or writes
  // the tensor's data, gradient or autograd flags. Shape, dtype and device never change under an epoch.
  const at::Tensor& usable(Napi::Env env, const char* what) const;

  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value IsDisposed(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Dtype(const Napi::CallbackInfo& info);
  Napi::Value Device(const Napi::CallbackInfo& info);
  Napi::Value RequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info);
  Napi::Value Grad(const Napi::CallbackInfo& info);
  Napi::Value SetGrad(const Napi::CallbackInfo& info);
  Napi::Value Backward(const Napi::CallbackInfo& info);
  Napi::Value Item(const Napi::CallbackInfo& info);
  Napi::Value ToTypedArray(const Napi::CallbackInfo& info);
  Napi::Value IsLeaf(const Napi::CallbackInfo& info);
  Napi::Value SameAs(const Napi::CallbackInfo& info);
  Napi::Value Nbytes(const Napi::CallbackInfo& info);

  at::Tensor t_;
  bool disposed_ = false;
  int64_t reported_ = 0;
  Napi::Env env_;
};

// Module-level functions: fromTypedArray(data, shape, dtype, device).
void InitTensorFunctions(Napi::Env env, Napi::Object exports);

}  // namespace ltg
