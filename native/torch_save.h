// torch.save / torch.load files of a state_dict (names -> tensors). Writing goes through LibTorch's own
// pickler and zip writer (the format Python's torch.load reads). Reading does not trust the file: the zip
// (torch_save_file.h) and the pickle (pickle_reader.h) are read by our own checked readers, which build
// tensors and containers only, and every tensor is checked against its storage record (size, dtype,
// offset, sizes, strides) before any tensor memory is made, as torch.load(weights_only=True) checks it.
// Plain C++ over LibTorch; the N-API side is torch_save_wrap.cc.
#pragma once
#include <ATen/ATen.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ltg {

std::vector<char> saveTensorDict(const std::vector<std::pair<std::string, at::Tensor>>& entries);
// The entries of a torch.save'd dict of tensors (a state_dict), in the file's order, on the CPU whatever
// device each storage was saved from (map_location='cpu'); `what` names the file in errors (a truncated
// file, a record that disagrees with the pickle, a pickle that is not a dict of named tensors, a refused
// global). What the file unpacks to (storages, inflated records, the pickle's objects) may take at most
// `maxBytes`; `data` is borrowed for the call.
constexpr uint64_t kDefaultMaxBytes = uint64_t(4) << 30;  // loadPytorch's default maxBytes
std::vector<std::pair<std::string, at::Tensor>> loadTensorDict(const uint8_t* data, size_t size, const std::string& what,
                                                               uint64_t maxBytes);

}  // namespace ltg
