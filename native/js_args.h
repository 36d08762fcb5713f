// The one family of readers for N-API arguments and option-object fields, shared by every wrapper.
// A value of the wrong type, out of range, or a string outside an enum's list is a JS TypeError or
// RangeError naming the field, the value and what was allowed, never a silent default:
//   GanStep: spec.dLossReduction: expected one of 'sum', 'mean', got 'meen'
//   trainEpoch: batchSize must be a positive integer, got 0
// The errors are Napi errors, which guard() (errors.h), the one C++-to-JS boundary, passes through.
// "Missing" means undefined (an absent field or argument reads as undefined); the ...Or readers give
// their default only then, and null is missing only where a tensor or object may be none.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ltg::js {

// A JS value as error messages show it: 'text', 3, true, null, undefined, an array, an object, ...
std::string describe(const Napi::Value& v);

// Whether v is a tensor handle (a NativeTensor, disposed or not).
bool isTensor(const Napi::Value& v);

// The integers a JS number holds exactly.
constexpr int64_t kMaxSafeInteger = 9007199254740991;  // 2^53 - 1

// Inclusive bounds of an integer reader.
struct IntRange {
  int64_t min = -kMaxSafeInteger;
  int64_t max = kMaxSafeInteger;
};
constexpr IntRange kPositive{1, kMaxSafeInteger};
constexpr IntRange kNonNegative{0, kMaxSafeInteger};

// One string an enum reader allows, and what it stands for.
template <typename T>
struct Choice {
  const char* name;
  T value;
};

class Object;

// One JS value and the label its errors call it by ("GanStep: spec.loss", "manualSeed(seed)").
class Value {
 public:
  // A value labelled `label`; the fields of object() are then "<label>: <key>".
  Value(Napi::Env env, Napi::Value v, std::string label);

  bool isUndefined() const { return v_.IsUndefined(); }
  bool isNullish() const { return v_.IsUndefined() || v_.IsNull(); }
  const Napi::Value& raw() const { return v_; }
  const std::string& label() const { return label_; }
  Napi::Env env() const { return env_; }

  double number() const;  // any JS number: NaN and infinities are valid float arguments of ops
  double finite() const;
  double finiteOr(double dflt) const;
  int64_t integer(IntRange r = {}) const;  // an integral number, or a BigInt, within r
  int64_t integerOr(int64_t dflt, IntRange r = {}) const;
  bool boolean() const;
  bool booleanOr(bool dflt) const;
  std::string string() const;
  // One of the choices' names; TypeError listing them all otherwise. Inline: oneOf<bool>({{"a", x}, ...}).
  template <typename T, size_t N>
  T oneOf(const Choice<T> (&choices)[N]) const;
  template <typename T, size_t N>
  T oneOfOr(T dflt, const Choice<T> (&choices)[N]) const {
    return isUndefined() ? dflt : oneOf(choices);
  }
  c10::ScalarType dtype() const;  // 'float32', 'int64', ... (kDtypes)
  c10::Device device() const;     // 'cpu', 'cuda' or 'cuda:N', usable here (else "CUDA is not available: ...")
  const at::Tensor& tensor() const;  // a live tensor handle, not locked by a running trainEpoch (epoch_lock.h)
  at::Tensor tensorOrNone() const;   // undefined or null: an undefined tensor
  Object object() const;
  Object objectOrEmpty() const;  // undefined or null: an object without fields
  Napi::Array array() const;
  Value at(uint32_t i) const;  // element i of array(), labelled "<label>[i]"
  std::vector<int64_t> integers(IntRange r = {}) const;  // an array of integers
  Napi::Function functionOrNone() const;  // undefined or null: an empty function

  // TypeError "<label>: expected <expected>, got <value>".
  [[noreturn]] void fail(const std::string& expected) const;
  // RangeError "<label> must be <mustBe>, got <value>": the type was right, the value is not.
  [[noreturn]] void failRange(const std::string& mustBe) const;

 private:
  friend class Object;
  friend class Args;
  Value(Napi::Env env, Napi::Value v, std::string label, std::string who, std::string path);
  [[noreturn]] void failChoice(const char* const* names, size_t n) const;

  Napi::Env env_;
  Napi::Value v_;
  std::string label_;
  // Where the fields of object() are named from: "<who>: <path>.<key>" (just "<who>: <key>" at the top).
  std::string who_, path_;
};

// An options object; each field is a Value labelled "<who>: <path>.<key>".
class Object {
 public:
  // An empty `o` has no fields: each reads as undefined.
  Object(Napi::Env env, Napi::Object o, std::string who, std::string path = "");
  Value operator[](const char* key) const;
  bool has(const char* key) const { return !(*this)[key].isUndefined(); }
  // The same object with its fields named from another path (a layer's state-dict name, say).
  Object withPath(std::string path) const { return Object(env_, o_, who_, std::move(path)); }
  const Napi::Object& raw() const { return o_; }

 private:
  Napi::Env env_;
  Napi::Object o_;
  std::string who_, path_;
};

// The arguments of one N-API call; argument i is a Value labelled "<who>(<name>)", and the fields of
// an options argument are "<who>: <key>".
class Args {
 public:
  Args(const Napi::CallbackInfo& info, std::string who) : info_(info), who_(std::move(who)) {}
  Value operator()(size_t i, const char* name) const;
  size_t size() const { return info_.Length(); }
  const std::string& who() const { return who_; }

 private:
  const Napi::CallbackInfo& info_;
  std::string who_;
};

// dtype names as in the TS facade (ts/tensor/dtype.ts), read by Value::dtype().
inline constexpr Choice<c10::ScalarType> kDtypes[] = {
    {"float32", c10::kFloat}, {"float64", c10::kDouble}, {"float16", c10::kHalf}, {"bfloat16", c10::kBFloat16}, {"int64", c10::kLong},
    {"int32", c10::kInt},     {"int16", c10::kShort},    {"int8", c10::kChar},    {"uint8", c10::kByte},        {"bool", c10::kBool},
};
// t's facade name (kDtypes), else c10's.
std::string dtypeName(c10::ScalarType t);

template <typename T, size_t N>
T Value::oneOf(const Choice<T> (&choices)[N]) const {
  if (v_.IsString()) {
    std::string s = v_.As<Napi::String>().Utf8Value();
    for (const auto& c : choices)
      if (s == c.name) return c.value;
  }
  const char* names[N];
  for (size_t i = 0; i < N; ++i) names[i] = choices[i].name;
  failChoice(names, N);
}

}  // namespace ltg::js
