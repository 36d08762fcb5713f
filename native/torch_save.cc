#include "torch_save.h"

#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <unordered_map>

#include "pickle_reader.h"
#include "torch_save_file.h"

namespace ltg {

std::vector<char> saveTensorDict(const std::vector<std::pair<std::string, at::Tensor>>& entries) {
  c10::Dict<std::string, at::Tensor> dict;  // insertion-ordered, as a state_dict
  // contiguous CPU copies: what torch.load maps back (views would carry their whole storage)
  for (const auto& [name, t] : entries) dict.insert(name, t.detach().to(at::kCPU).contiguous().clone());
  // torch::jit::pickle_save's steps, without the type tags it adds (a global weights_only refuses)
  std::vector<char> pkl;
  torch::jit::Pickler pickler([&](const char* b, size_t n) { pkl.insert(pkl.end(), b, b + n); }, nullptr, nullptr, nullptr, nullptr,
                              /*tag_aggregates=*/false);
  pickler.protocol();
  pickler.pushIValue(c10::IValue(dict));
  pickler.stop();
  std::vector<char> out;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* d, size_t n) {
    const char* c = static_cast<const char*>(d);
    out.insert(out.end(), c, c + n);
    return n;
  });
  torch::jit::writeArchiveAndTensors("data", pkl.data(), pkl.size(), pickler.tensorData(), writer);
  writer.writeEndOfFile();
  return out;
}

namespace {
using pickle::Kind;

// A state_dict's pickle is about 100 bytes a tensor: 16 MiB is over 150,000 tensors (large models have
// thousands). Larger is refused before it is read or inflated (a deflate bomb would otherwise expand first).
constexpr uint64_t kMaxPickleBytes = uint64_t(16) << 20;
// What a tensor and its JS handle take beyond their data (TensorImpl, TensorWrap, the key), for the budget.
constexpr uint64_t kTensorCost = 512;

[[noreturn]] void bad(const std::string& msg) { throw FileFormatError(msg); }

// torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False): a pickle of its magic
// number 0x1950a86a20f9469cfc6c first (PROTO 2, LONG1 of 10 bytes), or, older still, a tar archive.
bool isLegacy(const uint8_t* d, size_t n) {
  static const uint8_t kMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  if (n >= 2 + sizeof(kMagic) && d[0] == 0x80 && std::memcmp(d + 2, kMagic, sizeof(kMagic)) == 0) return true;
  static const char kText[] = "L119547037146038801333356L\n";  // the same in pickle protocols 0 and 1
  if (n >= sizeof(kText) - 1 && std::memcmp(d, kText, sizeof(kText) - 1) == 0) return true;
  return n >= 262 && std::memcmp(d + 257, "ustar", 5) == 0;
}

std::string bracketed(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

// The tensors of the state_dict, each checked against its storage record before memory is made for it;
// a storage shared by several tensors is read once (they are views of it, as torch.load gives them).
class Storages {
 public:
  Storages(const ZipArchive& zip, Budget& budget, bool bigEndian) : zip_(zip), budget_(budget), bigEndian_(bigEndian) {}

  // The tensor `name` (a key of the state_dict) rebuilds; one tensor for keys the pickle gives the same one.
  at::Tensor tensor(const std::string& name, const pickle::TensorRef& t) {
    auto done = made_.find(&t);
    if (done != made_.end()) return done->second;
    at::Tensor out = make(name, t);
    made_.emplace(&t, out);
    return out;
  }

 private:
  at::Tensor make(const std::string& name, const pickle::TensorRef& t) {
    budget_.charge(kTensorCost, "the tensors");
    const pickle::StorageRef& s = *t.storage;
    const pickle::DtypeInfo& sd = pickle::dtypeInfo(s.dtype);
    const pickle::DtypeInfo& td = pickle::dtypeInfo(t.dtype);
    const std::string key = "'" + name + "'";
    for (const auto* d : {&td, &sd})
      if (!d->type)
        bad(key + " is a torch." + d->name +
            " tensor: libtorch-gan reads float32, float64, float16, bfloat16, int64, int32, int16, int8, uint8 and bool");
    const uint64_t storageElement = c10::elementSize(*sd.type), element = c10::elementSize(*td.type);
    const std::string rec = "data/" + s.key;
    uint64_t nbytes;
    if (__builtin_mul_overflow(uint64_t(s.numel), storageElement, &nbytes))
      bad(key + ": its storage '" + rec + "' claims " + std::to_string(s.numel) + " elements, more than any file holds");
    const ZipArchive::Record* r = zip_.find(rec);
    if (!r) bad(key + ": its storage record '" + rec + "' is not in the archive");
    if (r->size != nbytes)
      bad(key + ": its storage record '" + rec + "' holds " + std::to_string(r->size) + " bytes, but the pickle says " +
          std::to_string(s.numel) + " " + sd.name + " elements (" + std::to_string(nbytes) + " bytes); torch.load refuses it too");
    auto view = [&] {  // built only for an error: a view may have many dims
      return "sizes " + bracketed(t.sizes) + ", strides " + bracketed(t.strides) + " and storage offset " + std::to_string(t.offset);
    };
    auto negative = [](const std::vector<int64_t>& v) { return std::any_of(v.begin(), v.end(), [](int64_t x) { return x < 0; }); };
    if (t.offset < 0 || negative(t.sizes) || negative(t.strides))
      bad(key + ": " + view() + ": a negative value; torch.load refuses it too");
    // the view: every element it reaches lies in the record (ATen's set_ checks it again); a view with a
    // zero size reaches nothing, as in ATen
    bool empty = std::find(t.sizes.begin(), t.sizes.end(), 0) != t.sizes.end();
    uint64_t numel = 1, last = uint64_t(t.offset);
    bool overflow = false;
    for (size_t i = 0; i < t.sizes.size() && !empty; ++i) {
      uint64_t reach;
      overflow |= __builtin_mul_overflow(numel, uint64_t(t.sizes[i]), &numel) ||
                  __builtin_mul_overflow(uint64_t(t.sizes[i] - 1), uint64_t(t.strides[i]), &reach) ||
                  __builtin_add_overflow(last, reach, &last);
    }
    if (overflow || numel > uint64_t(INT64_MAX)) bad(key + ": " + view() + " overflow 64 bits");
    uint64_t end;
    if (!empty && (__builtin_add_overflow(last, 1, &end) || __builtin_mul_overflow(end, element, &end) || end > nbytes))
      bad(key + ": " + view() + " reach past the end of its storage record '" + rec + "' (" + std::to_string(nbytes) + " bytes of " +
          sd.name + (t.dtype == s.dtype ? "" : std::string(", read as ") + td.name) + "); torch.load refuses it too");
    const at::Storage& storage = load(key, rec, *r, s.dtype, storageElement);
    at::Tensor out = at::empty({0}, at::TensorOptions().dtype(*td.type)).set_(storage, t.offset, t.sizes, t.strides);
    if (t.neg) {  // get_tensor_metadata's neg bit: the stored values are the negation of the tensor's
      if (*td.type == at::kBool) bad(key + ": a bool tensor marked negated");
      out = out.neg();
    }
    return out;
  }

  struct Loaded {
    at::Storage storage;
    int dtype;
    uint64_t element;
  };

  const at::Storage& load(const std::string& key, const std::string& rec, const ZipArchive::Record& r, int dtype, uint64_t element) {
    auto it = loaded_.find(rec);
    if (it != loaded_.end()) {
      // torch.load gives a record read as another dtype of the same byte length the same bytes; a
      // big-endian file's bytes are swapped for the first dtype only
      if (bigEndian_ && it->second.element != element)
        bad(key + ": its storage record '" + rec + "' is read as both " + pickle::dtypeInfo(it->second.dtype).name + " and " +
            pickle::dtypeInfo(dtype).name + " in a big-endian file");
      return it->second.storage;
    }
    budget_.charge(r.size, "the storage of " + key + " (record '" + rec + "', " + describeBytes(r.size) + ")");
    at::Tensor bytes = at::empty({int64_t(r.size)}, at::kByte);
    uint8_t* p = bytes.data_ptr<uint8_t>();
    if (r.size) zip_.read(r, p);
    if (bigEndian_ && element > 1)  // the file's byteorder record says "big": each element's bytes reversed
      for (uint64_t at = 0; at < r.size; at += element) std::reverse(p + at, p + at + element);
    return loaded_.emplace(rec, Loaded{bytes.storage(), dtype, element}).first->second.storage;
  }

  const ZipArchive& zip_;
  Budget& budget_;
  bool bigEndian_;
  std::unordered_map<std::string, Loaded> loaded_;
  std::unordered_map<const pickle::TensorRef*, at::Tensor> made_;
};

std::vector<std::pair<std::string, at::Tensor>> readStateDict(const uint8_t* data, size_t size, uint64_t maxBytes) {
  if (isLegacy(data, size))
    bad("a legacy torch.save file (before PyTorch 1.6's zip format); re-save it with torch.save(...) from a current PyTorch");
  ZipArchive zip(data, size);
  Budget budget(maxBytes);
  bool bigEndian = false;  // torch.load's default for files without a byteorder record (before PyTorch 2.1)
  if (const ZipArchive::Record* r = zip.find("byteorder")) {
    std::string order(r->size <= 16 ? size_t(r->size) : 16, '\0');
    if (r->size <= 16) zip.read(*r, reinterpret_cast<uint8_t*>(order.data()));
    if (order != "little" && order != "big") bad("its byteorder record says neither little nor big");
    bigEndian = order == "big";
  }
  const ZipArchive::Record* pr = zip.find("data.pkl");
  if (!pr) bad("not a torch.save file (no data.pkl in the archive's folder '" + zip.folder() + "')");
  if (pr->size > kMaxPickleBytes)
    bad("its data.pkl is " + describeBytes(pr->size) + "; a state_dict's pickle is about 100 bytes a tensor, and more than " +
        describeBytes(kMaxPickleBytes) + " is refused unread");
  std::vector<uint8_t> inflated;
  const uint8_t* pkl = zip.storedBytes(*pr);
  if (!pkl) {
    budget.charge(pr->size, "data.pkl (" + describeBytes(pr->size) + ")");
    inflated.resize(size_t(pr->size));
    zip.read(*pr, inflated.data());
    pkl = inflated.data();
  }
  pickle::Value root = pickle::unpickle(pkl, size_t(pr->size), budget);
  if (root.kind != Kind::Dict) bad("expected a state_dict (a dict of names to tensors), got " + pickle::describe(root));
  Storages storages(zip, budget, bigEndian);
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& [k, v] : root.dict().items) {
    budget.charge(kTensorCost, "the state_dict's entries");
    if (k.kind != Kind::Str) bad("a key is " + pickle::describe(k) + ", expected parameter names (strings)");
    if (v.kind != Kind::Tensor)
      bad("'" + k.str() + "' holds " + pickle::describe(v) + ", expected a tensor (save G.state_dict() itself, not a dict around it)");
    out.emplace_back(k.str(), storages.tensor(k.str(), v.tensor()));
  }
  return out;
}
}  // namespace

std::vector<std::pair<std::string, at::Tensor>> loadTensorDict(const uint8_t* data, size_t size, const std::string& what,
                                                               uint64_t maxBytes) {
  try {
    return readStateDict(data, size, maxBytes);
  } catch (const FileFormatError& e) {
    TORCH_CHECK(false, what, ": ", e.what());
  } catch (const std::bad_alloc&) {
    TORCH_CHECK(false, what, ": out of memory while reading it (maxBytes bounds what a file may take)");
  }
}

}  // namespace ltg
