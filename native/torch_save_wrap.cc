// N-API side of torch_save.h: pickleSave(names, tensors) -> Buffer,
// pickleLoad(bytes, what, { maxBytes }?) -> { names, tensors } (the bytes are read in place, not copied).
#include <napi.h>

#include "bindings.h"
#include "errors.h"
#include "js_args.h"
#include "tensor_wrap.h"
#include "torch_save.h"

namespace ltg {

namespace {
Napi::Value PickleSave(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args a(info, "pickleSave");
    Napi::Array names = a(0, "names").array();
    js::Value tensors = a(1, "tensors");
    Napi::Array list = tensors.array();
    if (names.Length() != list.Length()) throwError(env, "pickleSave: names and tensors differ in length");
    std::vector<std::pair<std::string, at::Tensor>> entries;
    for (uint32_t i = 0; i < names.Length(); ++i)
      entries.emplace_back(js::Value(env, names.Get(i), "pickleSave(names)").string(), tensors.at(i).tensor());
    std::vector<char> bytes = saveTensorDict(entries);
    return Napi::Buffer<char>::Copy(env, bytes.data(), bytes.size());
  });
}

Napi::Value PickleLoad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args a(info, "pickleLoad");
    js::Value arg = a(0, "bytes");
    Napi::Value raw = arg.raw();
    if (!raw.IsTypedArray() || raw.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) arg.fail("a Uint8Array");
    auto arr = raw.As<Napi::Uint8Array>();
    std::string what = a(1, "what").string();
    uint64_t maxBytes = uint64_t(a(2, "options").objectOrEmpty()["maxBytes"].integerOr(int64_t(kDefaultMaxBytes), js::kPositive));
    auto entries = loadTensorDict(arr.Data(), arr.ByteLength(), what, maxBytes);
    auto names = Napi::Array::New(env, entries.size());
    auto tensors = Napi::Array::New(env, entries.size());
    for (size_t i = 0; i < entries.size(); ++i) {
      names.Set(uint32_t(i), entries[i].first);
      tensors.Set(uint32_t(i), TensorWrap::New(env, entries[i].second));
    }
    auto o = Napi::Object::New(env);
    o.Set("names", names);
    o.Set("tensors", tensors);
    return o;
  });
}
}  // namespace

void InitTorchSave(Napi::Env env, Napi::Object exports) {
  exports.Set("pickleSave", Napi::Function::New<PickleSave>(env));
  exports.Set("pickleLoad", Napi::Function::New<PickleLoad>(env));
}

}  // namespace ltg
