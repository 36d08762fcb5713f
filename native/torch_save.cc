#include "torch_save.h"

#include <c10/util/Exception.h>
#include <caffe2/serialize/in_memory_adapter.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/export.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/csrc/jit/serialization/unpickler.h>

#include <cstring>

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
// LibTorch's unpickler reads `collections.OrderedDict` as None (it expects one only as a tensor's empty
// backward hooks), and state_dict() is an OrderedDict, with its `_metadata` set by a final BUILD. So a
// stream that starts by building an OrderedDict is read inside a tuple: a MARK first, `EMPTY_TUPLE
// REDUCE` replaced by EMPTY_DICT (the global stays in memo 0 for the hooks), and TUPLE before STOP; the
// dict is then the tuple's second element. Any other global is still the unpickler's to refuse.
bool wrapTopLevelOrderedDict(std::string& pkl) {
  static const char kHead[] =
      "\x80\x02"
      "ccollections\nOrderedDict\nq\x00)R";  // PROTO 2, GLOBAL, BINPUT 0, EMPTY_TUPLE, REDUCE
  static const std::string head(kHead, sizeof(kHead) - 1);
  if (pkl.compare(0, head.size(), head) != 0 || pkl.back() != '.') return false;
  std::string body = pkl.substr(2, head.size() - 4);  // GLOBAL ... BINPUT 0
  std::string rest = pkl.substr(head.size(), pkl.size() - head.size() - 1);
  // a state_dict ends with BUILD (its `_metadata`, which LibTorch cannot apply to a dict): left out, the
  // state stays in the tuple unread
  if (!rest.empty() && rest.back() == 'b') rest.pop_back();
  // the OrderedDicts built later from memo 0 (`BINGET 0 EMPTY_TUPLE REDUCE`: `_metadata` and its entries,
  // a tensor's empty backward hooks) become empty dicts too (NUL bytes never occur in a key's UTF-8)
  static const char kLater[] = "h\x00)R";
  static const std::string later(kLater, sizeof(kLater) - 1);
  for (size_t at = rest.find(later); at != std::string::npos; at = rest.find(later, at + 1)) rest.replace(at, later.size(), "}");
  pkl = std::string("\x80\x02(") + body + "}" + rest + "t.";
  return true;
}

c10::IValue unpickle(const std::vector<char>& bytes) {
  caffe2::serialize::PyTorchStreamReader reader(std::make_shared<caffe2::serialize::MemoryReadAdapter>(bytes.data(), bytes.size()));
  auto [data, size] = reader.getRecord("data.pkl");
  std::string pkl(static_cast<const char*>(data.get()), size);
  bool wrapped = wrapTopLevelOrderedDict(pkl);
  size_t pos = 0;
  auto read = [&](char* out, size_t n) {
    n = std::min(n, pkl.size() - pos);
    std::memcpy(out, pkl.data() + pos, n);
    pos += n;
    return n;
  };
  auto record = [&](const std::string& name) { return std::get<0>(reader.getRecord("data/" + name)); };
  torch::jit::Unpickler u(read, nullptr, nullptr, record, std::nullopt);
  c10::IValue v = u.parse_ivalue();
  if (!wrapped) return v;
  TORCH_CHECK(v.isTuple() && v.toTupleRef().elements().size() >= 2, "the state_dict's OrderedDict did not unpickle as expected");
  return v.toTupleRef().elements()[1];
}
}  // namespace

std::vector<std::pair<std::string, at::Tensor>> loadTensorDict(const std::vector<char>& bytes, const std::string& what) {
  c10::IValue v;
  try {
    v = unpickle(bytes);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto* ce = dynamic_cast<const c10::Error*>(&e)) msg = ce->what_without_backtrace();
    TORCH_CHECK(false, what, ": not a torch.save file LibTorch's unpickler accepts (it builds tensors and containers only): ", msg);
  }
  TORCH_CHECK(v.isGenericDict(), what, ": expected a state_dict (a dict of names to tensors), got a ", v.tagKind());
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& kv : v.toGenericDict()) {
    TORCH_CHECK(kv.key().isString(), what, ": a key is a ", kv.key().tagKind(), ", expected parameter names (strings)");
    const std::string name = kv.key().toStringRef();
    TORCH_CHECK(kv.value().isTensor(), what, ": '", name, "' holds a ", kv.value().tagKind(),
                ", expected a tensor (save G.state_dict() itself, not a dict around it)");
    out.emplace_back(name, kv.value().toTensor());
  }
  return out;
}

}  // namespace ltg
