#include "js_args.h"

#include <cmath>
#include <limits>
#include <optional>

#include "addon_data.h"
#include "cuda_status.h"
#include "epoch_lock.h"
#include "errors.h"

namespace ltg::js {

namespace {
// Appends rather than `"'" + s`: GCC 12 warns (falsely) about that operator+ inlined with -O2.
std::string quoted(const std::string& s) { return std::string("'").append(s).append("'"); }
}  // namespace

std::string describe(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsString()) return quoted(v.As<Napi::String>().Utf8Value());
  if (v.IsNumber() || v.IsBoolean()) return v.ToString().Utf8Value();
  if (v.IsBigInt()) return v.ToString().Utf8Value() + "n";
  if (v.IsArray()) return "an array";
  if (v.IsTypedArray()) return "a typed array";
  if (v.IsFunction()) return "a function";
  if (isTensor(v)) return "a Tensor";
  if (v.IsObject()) return "an object";
  return "a " + std::string(v.IsSymbol() ? "symbol" : "value of another type");
}

bool isTensor(const Napi::Value& v) { return v.IsObject() && v.As<Napi::Object>().InstanceOf(addonData(v.Env()).tensorCtor.Value()); }

std::string dtypeName(c10::ScalarType t) {
  for (const auto& d : kDtypes)
    if (t == d.value) return d.name;
  return c10::toString(t);
}

Value::Value(Napi::Env env, Napi::Value v, std::string label) : Value(env, v, label, label, "") {}

Value::Value(Napi::Env env, Napi::Value v, std::string label, std::string who, std::string path)
    : env_(env), v_(v), label_(std::move(label)), who_(std::move(who)), path_(std::move(path)) {}

void Value::fail(const std::string& expected) const { throwType(env_, label_ + ": expected " + expected + ", got " + describe(v_)); }

void Value::failRange(const std::string& mustBe) const {
  throw Napi::RangeError::New(env_, label_ + " must be " + mustBe + ", got " + describe(v_));
}

void Value::failChoice(const char* const* names, size_t n) const {
  std::string list;
  for (size_t i = 0; i < n; ++i) list += std::string(i ? ", '" : "'") + names[i] + "'";
  fail("one of " + list);
}

double Value::number() const {
  if (!v_.IsNumber()) fail("a number");
  return v_.As<Napi::Number>().DoubleValue();
}

double Value::finite() const {
  double d = v_.IsNumber() ? v_.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d)) fail("a finite number");
  return d;
}

double Value::finiteOr(double dflt) const { return isUndefined() ? dflt : finite(); }

namespace {
std::string rangeText(IntRange r) {
  if (r.max == kMaxSafeInteger) return r.min == 1 ? "a positive integer" : "an integer >= " + std::to_string(r.min);
  if (r.min == -kMaxSafeInteger) return "an integer <= " + std::to_string(r.max);
  if (r.min == 1) return "a positive integer <= " + std::to_string(r.max);
  return "an integer in [" + std::to_string(r.min) + ", " + std::to_string(r.max) + "]";
}
}  // namespace

int64_t Value::integer(IntRange r) const {
  int64_t out;
  if (v_.IsBigInt()) {
    bool lossless = false;
    out = v_.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) fail(rangeText(r));
  } else {
    double d = v_.IsNumber() ? v_.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d != std::trunc(d)) fail("an integer");
    if (std::abs(d) > double(kMaxSafeInteger)) failRange(rangeText(r));
    out = int64_t(d);
  }
  if (out < r.min || out > r.max) failRange(rangeText(r));
  return out;
}

int64_t Value::integerOr(int64_t dflt, IntRange r) const { return isUndefined() ? dflt : integer(r); }

bool Value::boolean() const {
  if (!v_.IsBoolean()) fail("a boolean");
  return v_.As<Napi::Boolean>().Value();
}

bool Value::booleanOr(bool dflt) const { return isUndefined() ? dflt : boolean(); }

std::string Value::string() const {
  if (!v_.IsString()) fail("a string");
  return v_.As<Napi::String>().Utf8Value();
}

c10::ScalarType Value::dtype() const { return oneOf(kDtypes); }

namespace {
// Only what the facade's Device type allows: c10's own parser also takes 'meta', 'mps', ... and
// would let a device through that nothing else here handles.
std::optional<c10::Device> parseDevice(const Napi::Value& v) {
  if (!v.IsString()) return std::nullopt;
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (s == "cuda") return c10::Device(c10::kCUDA);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() <= 8 && s.find_first_not_of("0123456789", 5) == std::string::npos) {
    int index = std::stoi(s.substr(5));
    if (index <= std::numeric_limits<c10::DeviceIndex>::max()) return c10::Device(c10::kCUDA, c10::DeviceIndex(index));
  }
  return std::nullopt;
}
}  // namespace

c10::Device Value::device() const {
  std::optional<c10::Device> d = parseDevice(v_);
  if (!d) fail("'cpu', 'cuda' or 'cuda:N'");
  // One message for a CUDA device this machine cannot use, before any op meets the driver's own errors.
  std::string why = deviceUnusableReason(*d);
  if (!why.empty()) throwError(env_, label_ + ": " + why);
  return *d;
}

const at::Tensor& Value::tensor() const {
  if (!isTensor(v_)) fail("a Tensor");
  const at::Tensor& t = addonData(env_).liveTensor(v_.As<Napi::Object>());
  if (isLocked(t)) throwError(env_, inUseMessage(label_));
  return t;
}

at::Tensor Value::tensorOrNone() const { return isNullish() ? at::Tensor() : tensor(); }

Object Value::object() const {
  // Arrays and functions are objects to N-API, never options objects.
  if (!v_.IsObject() || v_.IsArray() || v_.IsFunction() || isTensor(v_)) fail("an object");
  return Object(env_, v_.As<Napi::Object>(), who_, path_);
}

Object Value::objectOrEmpty() const { return isNullish() ? Object(env_, Napi::Object(), who_, path_) : object(); }

Napi::Array Value::array() const {
  if (!v_.IsArray()) fail("an array");
  return v_.As<Napi::Array>();
}

Value Value::at(uint32_t i) const {
  std::string index = std::string("[").append(std::to_string(i)).append("]");
  Napi::Value e = array().Get(i);
  // Fields of an element continue the element's path: "GanStep: g[2].kind".
  if (path_.empty()) return Value(env_, e, label_ + index, label_ + index, "");
  return Value(env_, e, label_ + index, who_, path_ + index);
}

std::vector<int64_t> Value::integers(IntRange r) const {
  Napi::Array a = array();
  std::vector<int64_t> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(at(i).integer(r));
  return out;
}

Napi::Function Value::functionOrNone() const {
  if (isNullish()) return Napi::Function();
  if (!v_.IsFunction()) fail("a function");
  return v_.As<Napi::Function>();
}

Object::Object(Napi::Env env, Napi::Object o, std::string who, std::string path)
    : env_(env), o_(o), who_(std::move(who)), path_(std::move(path)) {}

Value Object::operator[](const char* key) const {
  std::string path = path_.empty() ? key : path_ + "." + key;
  Napi::Value v = o_.IsEmpty() ? env_.Undefined() : o_.Get(key);
  return Value(env_, v, who_ + ": " + path, who_, path);
}

Value Args::operator()(size_t i, const char* name) const {
  // Fields of an options argument are named by their key alone ("Adam: lr"), as the facade documents them.
  return Value(info_.Env(), info_[i], who_ + "(" + name + ")", who_, "");
}

}  // namespace ltg::js
