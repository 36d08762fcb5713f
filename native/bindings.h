// Registration functions of each wrapped concept (declared without LibTorch types, so that addon.cc
// stays free of LibTorch's headers).
#pragma once
#include <napi.h>

namespace ltg {
void InitTensorModule(Napi::Env env, Napi::Object exports);
void InitOps(Napi::Env env, Napi::Object exports);
void InitRuntime(Napi::Env env, Napi::Object exports);
void InitOptim(Napi::Env env, Napi::Object exports);
void InitGan(Napi::Env env, Napi::Object exports);
void InitDist(Napi::Env env, Napi::Object exports);
void InitTorchSave(Napi::Env env, Napi::Object exports);
void InitAutograd(Napi::Env env, Napi::Object exports);
void InitDiffAugment(Napi::Env env, Napi::Object exports);
void InitAutocast(Napi::Env env, Napi::Object exports);
}  // namespace ltg
