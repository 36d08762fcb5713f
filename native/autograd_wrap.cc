// N-API glue of autograd.h: autogradGrad(outputs, inputs, gradOutputs, { retainGraph, createGraph, allowUnused }).
#include "autograd.h"
#include "bindings.h"
#include "errors.h"
#include "js_args.h"
#include "tensor_wrap.h"

namespace ltg {

namespace {

// The tensors of an array argument; a nullish element is an undefined tensor where `orNone`.
std::vector<at::Tensor> tensorsFromJs(const js::Value& v, bool orNone) {
  uint32_t n = v.array().Length();
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; ++i) out.push_back(orNone ? v.at(i).tensorOrNone() : v.at(i).tensor());
  return out;
}

Napi::Value Grad(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    js::Args args(info, "autograd.grad");
    std::vector<at::Tensor> outputs = tensorsFromJs(args(0, "outputs"), false);
    std::vector<at::Tensor> inputs = tensorsFromJs(args(1, "inputs"), false);
    js::Value given = args(2, "gradOutputs");
    // None given: implicit ones for every output (scalar outputs only).
    std::vector<at::Tensor> gradOutputs = given.isNullish() ? std::vector<at::Tensor>(outputs.size()) : tensorsFromJs(given, true);
    js::Object o = args(3, "options").object();
    GradOptions options;
    options.createGraph = o["createGraph"].boolean();
    options.retainGraph = o["retainGraph"].boolean();
    options.allowUnused = o["allowUnused"].boolean();
    std::vector<at::Tensor> grads = grad(outputs, inputs, gradOutputs, options, "autograd.grad");
    Napi::Array out = Napi::Array::New(env, grads.size());
    for (uint32_t j = 0; j < grads.size(); ++j) out.Set(j, grads[j].defined() ? Napi::Value(TensorWrap::New(env, grads[j])) : env.Null());
    return out;
  });
}

}  // namespace

void InitAutograd(Napi::Env env, Napi::Object exports) { exports.Set("autogradGrad", Napi::Function::New<Grad>(env, "autogradGrad")); }

}  // namespace ltg
