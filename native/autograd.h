// torch.autograd.grad over LibTorch's engine, with PyTorch's checks naming the tensor at fault, and the
// epoch-lock rule every gradient computation obeys. LibTorch work only; autograd_wrap.cc is its N-API glue.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

namespace ltg {

// Whether a gradient computed from t would reach a tensor a running epoch owns: a loss computed from a
// model before its epoch started still leads to the model's AccumulateGrad nodes, whose variables the
// training thread is updating (backward() would write their gradients, grad() read their saved values).
bool graphReachesLocked(const at::Tensor& t);

// t.backward(grad, retainGraph, createGraph) (grad undefined: ones). LibTorch's warning that createGraph
// makes a cycle between a leaf and its .grad is not printed (the library prints nothing); the facade's
// backward() documents it instead.
void backward(const at::Tensor& t, const at::Tensor& grad, bool retainGraph, bool createGraph);

struct GradOptions {
  bool retainGraph = false;
  bool createGraph = false;
  bool allowUnused = false;
  // Refuse graphs that reach tensors a running epoch owns (JS callers); the epoch's own step, which
  // owns them, does not check.
  bool checkLocks = true;
};

// torch.autograd.grad(outputs, inputs, gradOutputs, retainGraph, createGraph, allowUnused). gradOutputs has
// one tensor per output, an undefined one standing for ones (scalar outputs only, as in PyTorch). The
// result has one tensor per input: undefined for an input the outputs do not depend on when allowUnused,
// an error naming it otherwise. Errors start with `who` and name tensors as "outputs[i]", "inputs[j]".
std::vector<at::Tensor> grad(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& inputs,
                             const std::vector<at::Tensor>& gradOutputs, const GradOptions& options, const std::string& who);

}  // namespace ltg
