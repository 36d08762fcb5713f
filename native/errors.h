// The one boundary where C++ exceptions become JS errors. Every N-API entry point runs its body
// through guard(): c10::Error keeps LibTorch's message without its C++ backtrace, c10's
// TypeError/IndexError map to JS TypeError/RangeError, anything else becomes a JS Error.
#pragma once
#include <c10/util/Exception.h>
#include <napi.h>
#include <string>

namespace ltg {

template <typename F>
auto guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::TypeError& e) {
    throw Napi::TypeError::New(env, e.what_without_backtrace());
  } catch (const c10::IndexError& e) {
    throw Napi::RangeError::New(env, e.what_without_backtrace());
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// Argument errors raised by our own checks.
[[noreturn]] inline void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void throwError(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

}  // namespace ltg
