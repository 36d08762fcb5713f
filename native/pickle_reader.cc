#include "pickle_reader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iterator>

namespace ltg::pickle {

namespace {
// The first ten are libtorch-gan's dtypes; the rest are names weights_only allows, kept for messages.
const DtypeInfo kDtypes[] = {
    {"float32", c10::kFloat},
    {"float64", c10::kDouble},
    {"float16", c10::kHalf},
    {"bfloat16", c10::kBFloat16},
    {"int64", c10::kLong},
    {"int32", c10::kInt},
    {"int16", c10::kShort},
    {"int8", c10::kChar},
    {"uint8", c10::kByte},
    {"bool", c10::kBool},
    {"complex32", std::nullopt},
    {"complex64", std::nullopt},
    {"complex128", std::nullopt},
    {"bcomplex32", std::nullopt},
    {"uint16", std::nullopt},
    {"uint32", std::nullopt},
    {"uint64", std::nullopt},
    {"float8_e4m3fn", std::nullopt},
    {"float8_e4m3fnuz", std::nullopt},
    {"float8_e5m2", std::nullopt},
    {"float8_e5m2fnuz", std::nullopt},
    {"float8_e8m0fnu", std::nullopt},
    {"float4_e2m1fn_x2", std::nullopt},
    {"qint8", std::nullopt},
    {"quint8", std::nullopt},
    {"qint32", std::nullopt},
    {"quint4x2", std::nullopt},
    {"quint2x4", std::nullopt},
    {"bits1x8", std::nullopt},
    {"bits2x4", std::nullopt},
    {"bits4x2", std::nullopt},
    {"bits8", std::nullopt},
    {"bits16", std::nullopt},
    {"int1", std::nullopt},
    {"int2", std::nullopt},
    {"int3", std::nullopt},
    {"int4", std::nullopt},
    {"int5", std::nullopt},
    {"int6", std::nullopt},
    {"int7", std::nullopt},
    {"uint1", std::nullopt},
    {"uint2", std::nullopt},
    {"uint3", std::nullopt},
    {"uint4", std::nullopt},
    {"uint5", std::nullopt},
    {"uint6", std::nullopt},
    {"uint7", std::nullopt},
};
constexpr int kNumDtypes = int(sizeof(kDtypes) / sizeof(kDtypes[0]));

int dtypeIndex(const std::string& name) {
  for (int i = 0; i < kNumDtypes; ++i)
    if (name == kDtypes[i].name) return i;
  return -1;
}

// torch.<Prefix>Storage (and torch.cuda.'s) and the dtype each holds; also the <Prefix>Tensor classes.
const std::pair<const char*, const char*> kStorageClasses[] = {
    {"Double", "float64"},
    {"Float", "float32"},
    {"Half", "float16"},
    {"BFloat16", "bfloat16"},
    {"Long", "int64"},
    {"Int", "int32"},
    {"Short", "int16"},
    {"Char", "int8"},
    {"Byte", "uint8"},
    {"Bool", "bool"},
    {"QInt8", "qint8"},
    {"QUInt8", "quint8"},
    {"QInt32", "qint32"},
    {"QUInt4x2", "quint4x2"},
    {"QUInt2x4", "quint2x4"},
    {"ComplexFloat", "complex64"},
    {"ComplexDouble", "complex128"},
};

// The other globals weights_only allows: values that a state_dict of dense tensors does not hold.
bool allowedButUnsupported(const std::string& module, const std::string& name) {
  static const char* const kNames[] = {
      "torch._utils._rebuild_qtensor",
      "torch._utils._rebuild_sparse_tensor",
      "torch._utils._rebuild_meta_tensor_no_storage",
      "torch._utils._rebuild_wrapper_subclass",
      "torch._utils._rebuild_device_tensor_from_numpy",
      "torch._utils._rebuild_device_tensor_from_cpu_tensor",
      "torch.serialization._get_layout",
      "torch.storage.TypedStorage",
      "torch.per_tensor_affine",
      "torch.per_tensor_symmetric",
      "torch.per_channel_affine",
      "torch.per_channel_symmetric",
      "torch.per_channel_affine_float_qparams",
      "_codecs.encode",
      "builtins.bytearray",
      "builtins.complex",
  };
  std::string full = module + "." + name;
  for (const char* n : kNames)
    if (full == n) return true;
  if (module == "torch" || module == "torch.cuda" || module == "torch.sparse" || module == "torch.cuda.sparse")
    for (const auto& [prefix, dtype] : kStorageClasses)
      if (name == std::string(prefix) + "Tensor") return true;
  return false;
}

// A name from the file, printable in a message.
std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 200)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 200 ? out + "..." : out;
}

// UTF-8 as Python's decoder with "surrogatepass" takes it (what weights_only reads strings with).
bool validUtf8(const uint8_t* s, size_t n) {
  for (size_t i = 0; i < n;) {
    uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0) return false;
    uint32_t cp = c & (0x7f >> len);  // the lead byte's payload bits
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) return false;
    i += len;
  }
  return true;
}

bool isSeq(Kind k) { return k == Kind::Tuple || k == Kind::List || k == Kind::Set; }

// What the allocator and a shared_ptr's control block add to each object, and what a hash map adds to
// each entry (node, bucket), for the budget.
constexpr uint64_t kObjectCost = 32, kEntryCost = 64;

class Machine {
 public:
  Machine(const uint8_t* data, size_t size, Budget& budget)
      : p_(data), n_(size), budget_(budget), limit_(kBytesPerPickleByte * size + (1 << 20)) {}

  Value run() {
    while (pos_ < n_) {
      op_ = pos_;
      uint8_t code = *take(1);
      switch (code) {
        case 0x80: {  // PROTO
          uint8_t v = *take(1);
          if (v > 5) fail("pickle protocol " + std::to_string(v) + " (Python writes 0 to 5)");
          break;
        }
        case 0x95: take(8); break;  // FRAME: a length hint, nothing to build
        case '.': return pop();     // STOP
        case '(':
          if (marks_.size() >= size_t(kMaxDepth)) fail("MARKs nested more than " + std::to_string(kMaxDepth) + " deep");
          marks_.push_back(stack_.size());
          break;
        case 'N': push(Value{}); break;
        case 0x88: push(scalar(Kind::Bool, 1)); break;
        case 0x89: push(scalar(Kind::Bool, 0)); break;
        case 'J': push(scalar(Kind::Int, int32_t(le(take(4), 4)))); break;
        case 'K': push(scalar(Kind::Int, *take(1))); break;
        case 'M': push(scalar(Kind::Int, int64_t(le(take(2), 2)))); break;
        case 0x8a: push(long1()); break;
        case 'G': {  // BINFLOAT, big-endian
          const uint8_t* b = take(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
          Value v;
          v.kind = Kind::Float;
          std::memcpy(&v.f, &bits, 8);
          push(std::move(v));
          break;
        }
        case 'X': push(string(le(take(4), 4))); break;     // BINUNICODE
        case 0x8c: push(string(*take(1))); break;          // SHORT_BINUNICODE
        case 0x8d: push(string(le(take(8), 8))); break;    // BINUNICODE8
        case 'U': push(string(*take(1))); break;           // SHORT_BINSTRING (torch.load decodes it as UTF-8)
        case ')': push(seq(Kind::Tuple, {})); break;
        case ']': push(seq(Kind::List, {})); break;
        case 0x8f: push(seq(Kind::Set, {})); break;
        case '}': push(newDict(false)); break;
        case 't': push(seq(Kind::Tuple, popMark())); break;
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
          size_t k = code - 0x84;
          if (stack_.size() - floor() < k) fail("TUPLE" + std::to_string(k) + " with fewer values on the stack");
          std::vector<Value> items(std::make_move_iterator(stack_.end() - k), std::make_move_iterator(stack_.end()));
          stack_.resize(stack_.size() - k);
          push(seq(Kind::Tuple, std::move(items)));
          break;
        }
        case 'a': {  // APPEND
          Value v = pop();
          append(top(), std::move(v));
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Value> items = popMark();
          Value& list = top();
          for (auto& v : items) append(list, std::move(v));
          break;
        }
        case 's': {  // SETITEM
          Value v = pop(), k = pop();
          setItem(top(), std::move(k), std::move(v));
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Value> items = popMark();
          if (items.size() % 2) fail("SETITEMS with a key and no value");
          Value& d = top();
          for (size_t k = 0; k < items.size(); k += 2) setItem(d, std::move(items[k]), std::move(items[k + 1]));
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string module = line(), name = line();
          push(global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Value name = pop(), module = pop();
          if (module.kind != Kind::Str || name.kind != Kind::Str) fail("STACK_GLOBAL of " + describe(module) + " and " + describe(name));
          push(global(module.str(), name.str()));
          break;
        }
        case 'R': {  // REDUCE
          Value args = pop();
          if (args.kind != Kind::Tuple) fail("REDUCE with " + describe(args) + " as the arguments");
          Value& f = top();
          f = call(f, args.seq().items);
          break;
        }
        case 0x81: {  // NEWOBJ
          Value args = pop(), cls = pop();
          if (args.kind != Kind::Tuple) fail("NEWOBJ with " + describe(args) + " as the arguments");
          push(newObject(cls, args.seq().items));
          break;
        }
        case 'b': {  // BUILD
          Value state = pop();
          build(top(), state);
          break;
        }
        case 'Q': {  // BINPERSID
          Value pid = pop();
          push(persistentLoad(pid));
          break;
        }
        case 'h': push(memoGet(*take(1))); break;
        case 'j': push(memoGet(le(take(4), 4))); break;
        case 'q': memoPut(*take(1)); break;
        case 'r': memoPut(le(take(4), 4)); break;
        case 0x94: memoPut(memo_.size()); break;  // MEMOIZE
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", code);
          fail(std::string("opcode ") + hex + ", which torch.save does not write (weights_only refuses it too)");
        }
      }
    }
    op_ = pos_;
    fail("the pickle ends before its STOP opcode (a truncated file?)");
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw FileFormatError("data.pkl, byte " + std::to_string(op_) + ": " + msg); }

  // Memory for what the pickle builds: within kBytesPerPickleByte of its size (a pickle that takes more
  // is built to take memory: a run of 60 MB of EMPTY_LIST would be gigabytes), and within maxBytes.
  void charge(uint64_t n, const char* what) {
    if (n > limit_ - used_)
      fail(std::string(what) + " would take more than " + describeBytes(limit_) + ", " + std::to_string(kBytesPerPickleByte) +
           " bytes for each byte of data.pkl (a state_dict's objects take about 30): a pickle made to take memory");
    used_ += n;
    budget_.charge(n, what);
  }

  // Room for one more item in `v`, charged before it is allocated (the growth std::vector would make).
  template <typename T>
  void grow(std::vector<T>& v, const char* what) {
    if (v.size() < v.capacity()) return;
    size_t more = std::max<size_t>(4, v.capacity());
    charge(more * sizeof(T), what);
    v.reserve(v.capacity() + more);
  }

  static uint64_t le(const uint8_t* b, int n) {
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; --k) v = (v << 8) | b[k];
    return v;
  }

  const uint8_t* take(uint64_t k) {
    if (k > n_ - pos_) fail("the pickle ends inside an opcode (a truncated file?)");
    const uint8_t* at = p_ + pos_;
    pos_ += size_t(k);
    return at;
  }

  std::string line() {
    const void* nl = std::memchr(p_ + pos_, '\n', n_ - pos_);
    if (!nl) fail("GLOBAL without its end of line");
    size_t len = static_cast<const uint8_t*>(nl) - (p_ + pos_);
    std::string s(reinterpret_cast<const char*>(take(len)), len);
    take(1);
    return s;
  }

  static Value scalar(Kind k, int64_t i) {
    Value v;
    v.kind = k;
    v.i = i;
    return v;
  }

  Value long1() {
    uint8_t n = *take(1);
    if (n > 8) fail("an integer of " + std::to_string(n) + " bytes, beyond int64");
    const uint8_t* b = take(n);
    uint64_t u = n ? le(b, n) : 0;
    if (n && n < 8 && (b[n - 1] & 0x80)) u |= ~uint64_t(0) << (8 * n);  // two's complement: extend the sign
    return scalar(Kind::Int, int64_t(u));
  }

  Value string(uint64_t len) {
    const uint8_t* b = take(len);
    if (!validUtf8(b, size_t(len))) fail("a string that is not UTF-8");
    charge(kObjectCost + sizeof(std::string) + len + 1, "data.pkl's strings");
    Value v;
    v.kind = Kind::Str;
    v.obj = std::make_shared<std::string>(reinterpret_cast<const char*>(b), size_t(len));
    return v;
  }

  Value named(Kind k, int64_t i, std::string name) {
    charge(kObjectCost + sizeof(std::string) + name.size() + 1, "data.pkl's globals");
    Value v = scalar(k, i);
    v.obj = std::make_shared<std::string>(std::move(name));
    return v;
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  void push(Value v) {
    if (stack_.size() >= charged_) {
      charge(sizeof(Value), "data.pkl's stack");
      ++charged_;
    }
    stack_.push_back(std::move(v));
  }

  Value pop() {
    if (stack_.size() <= floor()) fail("an opcode takes a value from an empty stack");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }

  Value& top() {
    if (stack_.size() <= floor()) fail("an opcode works on a value from an empty stack");
    return stack_.back();
  }

  std::vector<Value> popMark() {
    if (marks_.empty()) fail("an opcode takes the values after a MARK, and there is none");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(std::make_move_iterator(stack_.begin() + m), std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }

  // `child` goes inside a container of depth `depth`: it is frozen from now on (so no container can come
  // to hold itself), and the nesting stays within kMaxDepth.
  void adopt(int& depth, Value& child) {
    int d = 0;
    if (isSeq(child.kind)) {
      child.seq().frozen = true;
      d = child.seq().depth;
    } else if (child.kind == Kind::Dict) {
      child.dict().frozen = true;
      d = child.dict().depth;
    }
    if (d + 1 > kMaxDepth) fail("containers nested more than " + std::to_string(kMaxDepth) + " deep");
    depth = std::max(depth, d + 1);
  }

  Value seq(Kind k, std::vector<Value> items) {
    charge(kObjectCost + sizeof(Seq) + items.size() * sizeof(Value), "data.pkl's containers");
    auto s = std::make_shared<Seq>();
    for (auto& v : items) adopt(s->depth, v);
    s->items = std::move(items);
    s->frozen = k == Kind::Tuple;
    Value v;
    v.kind = k;
    v.obj = std::move(s);
    return v;
  }

  Value newDict(bool ordered) {
    charge(kObjectCost + sizeof(Dict), "data.pkl's containers");
    auto d = std::make_shared<Dict>();
    d->ordered = ordered;
    Value v;
    v.kind = Kind::Dict;
    v.obj = std::move(d);
    return v;
  }

  void append(Value& list, Value v) {
    if (list.kind != Kind::List) fail("APPEND to " + describe(list) + ", not a list");
    Seq& s = list.seq();
    if (s.frozen) fail("APPEND to a list already inside another object");
    if (v.obj == list.obj) fail("a list appended to itself");
    adopt(s.depth, v);
    grow(s.items, "data.pkl's lists");
    s.items.push_back(std::move(v));
  }

  void setItem(Value& target, Value k, Value v) {
    if (target.kind != Kind::Dict) fail("SETITEM on " + describe(target) + ", not a dict");
    Dict& d = target.dict();
    if (d.frozen) fail("SETITEM on a dict already inside another object");
    if (k.kind == Kind::List || k.kind == Kind::Dict || k.kind == Kind::Set) fail("a dict key that is " + describe(k) + " (unhashable)");
    if (k.obj == target.obj || v.obj == target.obj) fail("a dict put inside itself");
    adopt(d.depth, k);
    adopt(d.depth, v);
    if (k.kind == Kind::Str) {
      auto [it, fresh] = d.strKeys.emplace(k.str(), d.items.size());
      if (!fresh) {
        d.items[it->second].second = std::move(v);  // as Python: the later value, in the first one's place
        return;
      }
      charge(kEntryCost + k.str().size(), "data.pkl's dicts");
    }
    // keys of other types are kept as they come: only string keys make a state_dict
    grow(d.items, "data.pkl's dicts");
    d.items.emplace_back(std::move(k), std::move(v));
  }

  Value memoGet(uint64_t at) {
    auto it = memo_.find(at);
    if (it == memo_.end()) fail("memo " + std::to_string(at) + " is read before it is written");
    return it->second;
  }

  void memoPut(uint64_t at) {
    Value& v = top();
    auto [it, fresh] = memo_.emplace(at, v);
    if (fresh) charge(kEntryCost + sizeof(Value), "data.pkl's memo");
    else it->second = v;
  }

  Value global(std::string module, const std::string& name) {
    if (module == "__builtin__") module = "builtins";  // Python 2's name, as pickle maps it
    std::string full = module + "." + name;
    static const std::pair<const char*, Fn> kFns[] = {
        {"collections.OrderedDict", Fn::OrderedDict},
        {"collections.Counter", Fn::Counter},
        {"builtins.set", Fn::Set},
        {"torch.Size", Fn::Size},
        {"torch.device", Fn::Device},
        {"torch._utils._rebuild_tensor", Fn::RebuildTensor},
        {"torch._utils._rebuild_tensor_v2", Fn::RebuildTensorV2},
        {"torch._utils._rebuild_tensor_v3", Fn::RebuildTensorV3},
        {"torch._utils._rebuild_parameter", Fn::RebuildParameter},
        {"torch._utils._rebuild_parameter_with_state", Fn::RebuildParameterWithState},
        {"torch._tensor._rebuild_from_type_v2", Fn::RebuildFromTypeV2},
        {"torch.nn.parameter.Parameter", Fn::Parameter},
        {"torch.Tensor", Fn::TensorClass},
    };
    for (const auto& [n, fn] : kFns)
      if (full == n) return named(Kind::Global, int64_t(fn), full);
    if (full == "torch.storage.UntypedStorage") return named(Kind::StorageType, dtypeIndex("uint8"), full);
    if (module == "torch" || module == "torch.cuda")
      for (const auto& [prefix, dtype] : kStorageClasses)
        if (name == std::string(prefix) + "Storage") return named(Kind::StorageType, dtypeIndex(dtype), full);
    if (module == "torch")
      if (int d = dtypeIndex(name); d >= 0) return named(Kind::Dtype, d, full);
    if (allowedButUnsupported(module, name)) return named(Kind::Global, int64_t(Fn::Unsupported), full);
    fail("the pickle names the global " + printable(full) +
         ", which is not a tensor, storage or container type: refused (torch.load(weights_only=True) refuses it too), nothing was run");
  }

  [[noreturn]] void arity(const Value& f, const std::string& expected, size_t got) const {
    fail(f.str() + " takes " + expected + " arguments, got " + std::to_string(got));
  }

  int64_t integer(const Value& v, const std::string& what) const {
    if (v.kind != Kind::Int) fail(what + " is " + describe(v) + ", expected an int");
    return v.i;
  }

  int64_t nonNegative(const Value& v, const std::string& what) const {
    int64_t i = integer(v, what);
    if (i < 0) fail(what + " is negative (" + std::to_string(i) + ")");
    return i;
  }

  std::vector<int64_t> ints(const Value& v, const std::string& what) {
    if (v.kind != Kind::Tuple && v.kind != Kind::List) fail(what + " is " + describe(v) + ", expected a tuple of ints");
    std::vector<int64_t> out;
    charge(v.seq().items.size() * sizeof(int64_t), "data.pkl's tensors");
    for (const Value& x : v.seq().items) out.push_back(integer(x, what + " element"));
    return out;
  }

  bool boolean(const Value& v, const std::string& what) const {
    if (v.kind != Kind::Bool) fail(what + " is " + describe(v) + ", expected a bool");
    return v.i != 0;
  }

  // _rebuild_tensor*'s (storage, storage_offset, size, stride): a view, checked against the record later.
  Value tensor(const std::string& fn, const Value& storage, const Value& offset, const Value& size, const Value& stride,
               std::optional<int> dtype, const Value* metadata) {
    if (storage.kind != Kind::Storage) fail(fn + "'s storage is " + describe(storage) + ", expected a storage (a persistent id)");
    charge(kObjectCost + sizeof(TensorRef), "data.pkl's tensors");
    auto t = std::make_shared<TensorRef>();
    t->storage = std::static_pointer_cast<const StorageRef>(storage.obj);
    t->dtype = dtype.value_or(storage.storage().dtype);
    t->offset = integer(offset, fn + "'s storage offset");  // negative ones are refused naming the key
    t->sizes = ints(size, fn + "'s size");
    t->strides = ints(stride, fn + "'s stride");
    if (t->sizes.size() != t->strides.size())
      fail(fn + " with " + std::to_string(t->sizes.size()) + " sizes and " + std::to_string(t->strides.size()) + " strides");
    if (metadata && metadata->kind != Kind::None) {  // get_tensor_metadata's {'neg': bool, 'conj': bool}
      if (metadata->kind != Kind::Dict) fail(fn + "'s metadata is " + describe(*metadata) + ", expected a dict");
      for (const auto& [k, v] : metadata->dict().items) {
        std::string key = k.kind == Kind::Str ? k.str() : "";
        if (key != "neg" && key != "conj")
          fail(fn + "'s metadata holds " + (key.empty() ? describe(k) : "'" + printable(key) + "'") + ", not neg or conj");
        if (boolean(v, fn + "'s metadata '" + key + "'") && key == "conj") fail("a conjugated tensor (complex dtypes are not read)");
        if (key == "neg") t->neg = v.i != 0;
      }
    }
    Value v;
    v.kind = Kind::Tensor;
    v.obj = std::move(t);
    return v;
  }

  const Value& tensorArg(const Value& f, const Value& v) const {
    if (v.kind != Kind::Tensor) fail(f.str() + " of " + describe(v) + ", expected a tensor");
    return v;
  }

  Value call(const Value& f, std::vector<Value>& a) {
    if (f.kind != Kind::Global) fail("REDUCE calls " + describe(f) + ", which is not a function");
    size_t n = a.size();
    switch (Fn(f.i)) {
      case Fn::OrderedDict:
      case Fn::Counter: {
        Value d = newDict(true);
        if (n == 1 && a[0].kind == Kind::Dict && Fn(f.i) == Fn::Counter)  // Counter's own reduce: (Counter, (dict,))
          for (auto& [k, v] : a[0].dict().items) setItem(d, k, v);
        else if (n) arity(f, "no", n);
        return d;
      }
      case Fn::Set: {
        if (n == 0) return seq(Kind::Set, {});
        if (n != 1 || !isSeq(a[0].kind)) fail("builtins.set of " + (n ? describe(a[0]) : std::string("nothing")) + ", expected a list");
        return seq(Kind::Set, a[0].seq().items);
      }
      case Fn::Size: {
        if (n == 0) return seq(Kind::Tuple, {});
        if (n != 1) arity(f, "one", n);
        ints(a[0], "torch.Size");
        return seq(Kind::Tuple, a[0].seq().items);
      }
      case Fn::Device: {
        if (n < 1 || n > 2 || a[0].kind != Kind::Str) fail("torch.device of other than a name (and index)");
        return named(Kind::Opaque, 0, "torch.device");
      }
      case Fn::RebuildTensor:
        if (n != 4) arity(f, "4", n);
        return tensor(f.str(), a[0], a[1], a[2], a[3], std::nullopt, nullptr);
      case Fn::RebuildTensorV2:  // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (n != 6 && n != 7) arity(f, "6 or 7", n);
        boolean(a[4], f.str() + "'s requires_grad");
        return tensor(f.str(), a[0], a[1], a[2], a[3], std::nullopt, n == 7 ? &a[6] : nullptr);
      case Fn::RebuildTensorV3: {  // (storage, offset, size, stride, requires_grad, backward_hooks, dtype[, metadata])
        if (n != 7 && n != 8) arity(f, "7 or 8", n);
        boolean(a[4], f.str() + "'s requires_grad");
        if (a[6].kind != Kind::Dtype) fail(f.str() + "'s dtype is " + describe(a[6]));
        return tensor(f.str(), a[0], a[1], a[2], a[3], int(a[6].i), n == 8 ? &a[7] : nullptr);
      }
      case Fn::RebuildParameter:  // (data, requires_grad, backward_hooks): the data is the tensor
      case Fn::RebuildParameterWithState:  // ... and a state of attributes, not read
        if (n != (Fn(f.i) == Fn::RebuildParameter ? 3u : 4u)) arity(f, Fn(f.i) == Fn::RebuildParameter ? "3" : "4", n);
        boolean(a[1], f.str() + "'s requires_grad");
        return tensorArg(f, a[0]);
      case Fn::Parameter:  // Parameter(data[, requires_grad])
        if (n < 1 || n > 2) arity(f, "1 or 2", n);
        return tensorArg(f, a[0]);
      case Fn::RebuildFromTypeV2: {  // (func, new_type, args, state): a Tensor or Parameter with attributes, not read
        if (n != 4) arity(f, "4", n);
        const Value& func = a[0];
        const Value& type = a[1];
        bool rebuilds = func.kind == Kind::Global && Fn(func.i) >= Fn::RebuildTensor && Fn(func.i) <= Fn::RebuildParameterWithState;
        if (!rebuilds) fail(f.str() + " of " + describe(func) + ", expected a tensor rebuild function");
        if (type.kind != Kind::Global || (Fn(type.i) != Fn::TensorClass && Fn(type.i) != Fn::Parameter))
          fail(f.str() + " to " + describe(type) + ", expected torch.Tensor or torch.nn.parameter.Parameter");
        if (a[2].kind != Kind::Tuple) fail(f.str() + " with " + describe(a[2]) + " as the arguments");
        return call(func, a[2].seq().items);
      }
      case Fn::TensorClass: fail("torch.Tensor(...) called: a legacy tensor pickle, not read");
      case Fn::Unsupported: break;
    }
    fail(f.str() + " (allowed by torch.load(weights_only=True)) builds something libtorch-gan does not read: it reads dense tensors of " +
         "torch._utils._rebuild_tensor_v2 and containers");
  }

  Value newObject(const Value& cls, std::vector<Value>& a) {
    if (cls.kind == Kind::Global) switch (Fn(cls.i)) {
        case Fn::OrderedDict:
        case Fn::Counter: return newDict(true);  // cls.__new__(cls, *args) ignores the arguments
        case Fn::Set: return seq(Kind::Set, {});
        case Fn::Parameter: return call(cls, a);
        default: break;
      }
    fail("NEWOBJ of " + describe(cls) + ": only containers and torch.nn.parameter.Parameter are made this way");
  }

  void build(Value& inst, Value& state) {
    if (inst.kind != Kind::Dict || !inst.dict().ordered)
      fail("BUILD on " + describe(inst) + ": only an OrderedDict's attributes (a state_dict's _metadata) are set this way");
    if (inst.dict().frozen) fail("BUILD on an OrderedDict already inside another object");
    // OrderedDict.__dict__.update(state): its attributes, which a state_dict does not need; kept frozen
    int depth = 0;
    if (state.kind != Kind::Dict && state.kind != Kind::Tuple && state.kind != Kind::None)
      fail("an OrderedDict's state is " + describe(state) + ", expected a dict");
    adopt(depth, state);
  }

  Value persistentLoad(const Value& pid) {
    const char* expected = ", expected ('storage', torch.<Type>Storage, key, location, numel)";
    if (pid.kind != Kind::Tuple || pid.seq().items.size() != 5) fail("a persistent id that is " + describe(pid) + expected);
    const auto& t = pid.seq().items;
    if (t[0].kind != Kind::Str || t[0].str() != "storage") fail("a persistent id of " + describe(t[0]) + expected);
    if (t[1].kind != Kind::StorageType) fail("a storage of type " + describe(t[1]) + expected);
    if (t[2].kind != Kind::Str && t[2].kind != Kind::Int) fail("a storage key that is " + describe(t[2]) + expected);
    if (t[3].kind != Kind::Str) fail("a storage location that is " + describe(t[3]) + expected);
    charge(kObjectCost + sizeof(StorageRef), "data.pkl's storages");
    auto s = std::make_shared<StorageRef>();
    s->key = t[2].kind == Kind::Str ? t[2].str() : std::to_string(t[2].i);
    s->location = t[3].str();  // any: every storage goes where the caller asks (map_location)
    s->dtype = int(t[1].i);
    s->numel = nonNegative(t[4], "a storage's numel");
    Value v;
    v.kind = Kind::Storage;
    v.obj = std::move(s);
    return v;
  }

  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0, op_ = 0;
  Budget& budget_;
  uint64_t limit_, used_ = 0;
  std::deque<Value> stack_;  // grows by blocks: no reallocation doubling it
  size_t charged_ = 0;  // stack slots charged to the budget so far
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
};
}  // namespace

const DtypeInfo& dtypeInfo(int index) { return kDtypes[index]; }

std::string describe(const Value& v) {
  switch (v.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "a bool";
    case Kind::Int: return "an int";
    case Kind::Float: return "a float";
    case Kind::Str: return "a str";
    case Kind::Tuple: return "a tuple";
    case Kind::List: return "a list";
    case Kind::Set: return "a set";
    case Kind::Dict: return v.dict().ordered ? "an OrderedDict" : "a dict";
    case Kind::Storage: return "a storage";
    case Kind::Tensor: return "a tensor";
    case Kind::Global:
    case Kind::Dtype:
    case Kind::StorageType:
    case Kind::Opaque: return v.str();
  }
  return "a value";
}

Value unpickle(const uint8_t* data, size_t size, Budget& budget) { return Machine(data, size, budget).run(); }

}  // namespace ltg::pickle
