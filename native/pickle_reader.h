// A restricted pickle machine for torch.save's data.pkl: the opcodes torch.save emits (protocol 2, and
// protocol 4's FRAME, SHORT_BINUNICODE, BINUNICODE8, MEMOIZE, STACK_GLOBAL, EMPTY_SET), and of the globals
// only those torch.load(weights_only=True) allows for tensors, storages and containers; any other global
// is refused by name before anything is built, and nothing a pickle says is ever run. It builds values,
// not tensors: a tensor is its storage reference and view (offset, sizes, strides, dtype), checked
// against the storage's record by torch_save.cc before any tensor memory exists.
// One loop, no recursion: nesting is bounded (kMaxDepth), a container is frozen once it is inside
// another (so no cycle can be built), and every object is charged to the Budget before it is made.
#pragma once
#include <c10/core/ScalarType.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "torch_save_file.h"

namespace ltg::pickle {

// Deeper than any state_dict or training checkpoint (a state_dict is 3 deep, a checkpoint's optimizer
// state 6); a deeper pickle is refused rather than walked.
constexpr int kMaxDepth = 256;
// The most memory what a pickle builds may take for each of its bytes: a state_dict's objects take 25 to
// 35 (measured on torch.save'd state_dicts of 1 to 2,500 tensors); 64 leaves room, and bounds what a
// small deflated pickle of one repeated opcode can make us allocate (16 MiB of pickle: 1 GiB at most).
constexpr uint64_t kBytesPerPickleByte = 64;

// A torch dtype a pickle may name (torch.float32, torch.FloatStorage's, torch.uint16, ...); `type` is
// set for those libtorch-gan's tensors hold.
struct DtypeInfo {
  const char* name;  // as PyTorch spells it after "torch."
  std::optional<c10::ScalarType> type;
};
const DtypeInfo& dtypeInfo(int index);

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Set, Dict, Global, Dtype, StorageType, Storage, Tensor, Opaque };

// The callables and classes a pickle may name (Unsupported: allowed by weights_only, not read here).
enum class Fn : uint8_t {
  OrderedDict,
  Counter,
  Set,
  Size,
  Device,
  RebuildTensor,
  RebuildTensorV2,
  RebuildTensorV3,
  RebuildParameter,
  RebuildParameterWithState,
  RebuildFromTypeV2,
  Parameter,
  TensorClass,
  Unsupported,
};

struct Seq;
struct Dict;
struct StorageRef;
struct TensorRef;

struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;  // Bool, Int; Global: its Fn; Dtype, StorageType: dtypeInfo's index
  double f = 0;   // Float
  std::shared_ptr<void> obj;  // Str, Global, Opaque: std::string; Tuple, List, Set: Seq; Dict; Storage; Tensor

  const std::string& str() const { return *static_cast<const std::string*>(obj.get()); }
  Seq& seq() const { return *static_cast<Seq*>(obj.get()); }
  Dict& dict() const { return *static_cast<Dict*>(obj.get()); }
  const StorageRef& storage() const { return *static_cast<const StorageRef*>(obj.get()); }
  const TensorRef& tensor() const { return *static_cast<const TensorRef*>(obj.get()); }
};

// "a list", "an int", "torch.device" ...: what a value is, for messages.
std::string describe(const Value& v);

struct Seq {
  std::vector<Value> items;
  int depth = 1;
  bool frozen = false;
};

struct Dict {
  std::vector<std::pair<Value, Value>> items;  // in insertion order; a string key set again keeps its place
  std::unordered_map<std::string, size_t> strKeys;
  int depth = 1;
  bool frozen = false;
  bool ordered = false;  // an OrderedDict or Counter: BUILD may set its attributes (a state_dict's _metadata)
};

// ('storage', torch.<X>Storage, key, location, numel): the record data/<key> holding numel elements.
struct StorageRef {
  std::string key, location;
  int dtype;  // dtypeInfo's index; torch.storage.UntypedStorage is uint8
  int64_t numel;
};

// A tensor's view of a storage, as _rebuild_tensor_v2 gives it to Tensor.set_; unchecked (negative values
// included) until torch_save.cc checks it against the record.
struct TensorRef {
  std::shared_ptr<const StorageRef> storage;
  int dtype;  // the storage's, or _rebuild_tensor_v3's own
  int64_t offset;
  std::vector<int64_t> sizes, strides;
  bool neg = false;  // get_tensor_metadata's {'neg': True}: the values are stored negated
};

// The value data.pkl holds; a FileFormatError naming the byte and what is wrong otherwise.
Value unpickle(const uint8_t* data, size_t size, Budget& budget);

}  // namespace ltg::pickle
