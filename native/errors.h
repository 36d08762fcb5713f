// The one boundary where C++ exceptions become JS errors. Every N-API entry point runs its body
// through guard(): c10::Error keeps LibTorch's message without its C++ backtrace (that goes on
// nativeBacktrace where TORCH_SHOW_CPP_STACKTRACES=1), c10's TypeError/IndexError map to JS
// TypeError/RangeError, anything else becomes a JS Error. Work that runs off the JS thread (an epoch on
// the training thread, a collective on libuv's pool) keeps what it caught as a CaughtError and rejects
// its promise with toJsError(): the same mapping, so an error's class does not depend on the thread.
#pragma once
#include <c10/util/Exception.h>
#include <napi.h>
#include <cstdlib>
#include <string>
#include <type_traits>

namespace ltg {

// Whether JS can still run in env. A Worker that is ending (terminate(), process.exit() in it) refuses
// every call that needs JS; setting a property is refused exactly then, so it is the probe.
inline bool envCanRunJs(napi_env env) {
  napi_value o, v;
  return napi_create_object(env, &o) == napi_ok && napi_get_undefined(env, &v) == napi_ok &&
         napi_set_named_property(env, o, "probe", v) == napi_ok;
}

// c10::Error's C++ backtrace, for the JS error's nativeBacktrace, where TORCH_SHOW_CPP_STACKTRACES=1 asks
// for it (as PyTorch's Python does; the CLI sets it at --verbose 3 and LTG_DEBUG): empty otherwise, since
// symbolizing the frames costs time on every error.
inline std::string nativeBacktrace(const c10::Error& e) {
  const char* show = std::getenv("TORCH_SHOW_CPP_STACKTRACES");
  if (!show || std::string(show) != "1") return "";
  std::string full = e.what();
  const std::string& bare = e.what_without_backtrace();
  return full.compare(0, bare.size(), bare) == 0 ? full.substr(bare.size()) : full;
}

// `err` with `backtrace` as its nativeBacktrace property (none when empty).
template <typename E>
E withBacktrace(E err, const std::string& backtrace) {
  if (!backtrace.empty()) err.Set("nativeBacktrace", Napi::String::New(err.Env(), backtrace));
  return err;
}

// A caught C++ exception as JS will see it: its class, message and (c10::Error) native backtrace. It
// holds no JS value, so it is made on any thread and turned into a JS error on the JS thread.
struct CaughtError {
  enum class Kind { Error, TypeError, RangeError };
  Kind kind = Kind::Error;
  std::string message;
  std::string backtrace;
};

// The exception being handled: call it inside a catch block. `who` prefixes the message of an exception
// that is not a std::exception (it has none of its own).
inline CaughtError caughtError(const char* who = nullptr) {
  using K = CaughtError::Kind;
  try {
    throw;
  } catch (const c10::TypeError& e) {
    return {K::TypeError, e.what_without_backtrace(), nativeBacktrace(e)};
  } catch (const c10::IndexError& e) {
    return {K::RangeError, e.what_without_backtrace(), nativeBacktrace(e)};
  } catch (const c10::Error& e) {
    return {K::Error, e.what_without_backtrace(), nativeBacktrace(e)};
  } catch (const std::exception& e) {
    return {K::Error, e.what(), ""};
  } catch (...) {
    return {K::Error, who ? std::string(who) + ": unknown native error" : "unknown native error", ""};
  }
}

// The JS error of a caught exception (JS thread only).
inline Napi::Error toJsError(Napi::Env env, const CaughtError& e) {
  switch (e.kind) {
    case CaughtError::Kind::TypeError: return withBacktrace(Napi::TypeError::New(env, e.message), e.backtrace);
    case CaughtError::Kind::RangeError: return withBacktrace(Napi::RangeError::New(env, e.message), e.backtrace);
    case CaughtError::Kind::Error: break;
  }
  return withBacktrace(Napi::Error::New(env, e.message), e.backtrace);
}

template <typename F>
auto guard(Napi::Env env, F&& body) -> decltype(body()) {
  using R = decltype(body());
  try {
    try {
      return body();
    } catch (const Napi::Error&) {
      throw;
    } catch (...) {
      throw toJsError(env, caughtError());
    }
  } catch (const Napi::Error&) {
    if (envCanRunJs(env)) throw;
    // A Worker ending (terminate()) mid-call: its JS takes no exception any more, and node-addon-api's
    // failed attempt to throw one would throw again out of its own catch, aborting the whole process.
    if constexpr (std::is_void_v<R>) return;
    else return R();
  }
}

// Argument errors raised by our own checks.
[[noreturn]] inline void throwType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] inline void throwError(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

}  // namespace ltg
