// torch.save / torch.load files of a state_dict (names -> tensors) through LibTorch's own pickler and
// unpickler (torch::jit::pickle_save / pickle_load): the zip format Python's torch.load reads, and its
// unpickler builds tensors and containers only: a pickle that names any other global is refused.
// Plain C++ over LibTorch; the N-API side is torch_save_wrap.cc.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

namespace ltg {

std::vector<char> saveTensorDict(const std::vector<std::pair<std::string, at::Tensor>>& entries);
// The entries of a torch.save'd dict of tensors (a state_dict), in the file's order; `what` names the
// file in errors (a truncated file, a pickle that is not a dict of named tensors, a refused global).
std::vector<std::pair<std::string, at::Tensor>> loadTensorDict(const std::vector<char>& bytes, const std::string& what);

}  // namespace ltg
