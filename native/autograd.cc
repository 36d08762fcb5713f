#include "autograd.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include <unordered_set>

#include "epoch_lock.h"

namespace ltg {

bool graphReachesLocked(const at::Tensor& t) {
  const auto& root = t.grad_fn();
  if (!root) return false;
  std::vector<torch::autograd::Node*> todo{root.get()};
  std::unordered_set<torch::autograd::Node*> seen{root.get()};
  while (!todo.empty()) {
    torch::autograd::Node* node = todo.back();
    todo.pop_back();
    if (auto* acc = dynamic_cast<torch::autograd::AccumulateGrad*>(node)) {
      if (isLocked(acc->variable)) return true;
      continue;
    }
    for (const auto& e : node->next_edges())
      if (e.function && seen.insert(e.function.get()).second) todo.push_back(e.function.get());
  }
  return false;
}

namespace {

// Passes every warning on to the handler it replaces, except the engine's reference-cycle warning of
// backward(createGraph). Installed for one backward() on the calling thread (c10's handler is per thread).
class DropCycleWarning : public c10::WarningHandler {
 public:
  explicit DropCycleWarning(c10::WarningHandler* next) : next_(next) {}
  void process(const c10::Warning& w) override {
    if (w.msg().find("create a reference cycle") != std::string::npos) return;
    next_->process(w);
  }

 private:
  c10::WarningHandler* next_;
};

}  // namespace

void backward(const at::Tensor& t, const at::Tensor& grad, bool retainGraph, bool createGraph) {
  DropCycleWarning handler(c10::WarningUtils::get_warning_handler());
  c10::WarningUtils::WarningHandlerGuard guard(&handler);
  t.backward(grad, retainGraph, createGraph);
}

std::vector<at::Tensor> grad(const std::vector<at::Tensor>& outputs, const std::vector<at::Tensor>& inputs,
                             const std::vector<at::Tensor>& gradOutputs, const GradOptions& options, const std::string& who) {
  TORCH_CHECK_VALUE(!outputs.empty(), who, ": outputs is empty: give at least one tensor to differentiate");
  TORCH_CHECK_VALUE(!inputs.empty(), who, ": grad requires non-empty inputs");
  TORCH_CHECK_VALUE(gradOutputs.size() == outputs.size(), who, ": got ", outputs.size(), " outputs and ", gradOutputs.size(),
                    " gradOutputs (give one per output, null for an implicit one)");
  std::vector<at::Tensor> seeds;
  seeds.reserve(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const at::Tensor& out = outputs[i];
    // The messages of PyTorch's run_backward and _make_grads, with the tensor named.
    TORCH_CHECK(out.requires_grad(), who, ": element ", i, " of outputs does not require grad and does not have a grad_fn");
    TORCH_CHECK(!options.checkLocks || !graphReachesLocked(out),
                inUseMessage(who, ("a tensor the graph of outputs[" + std::to_string(i) + "] reaches").c_str()));
    at::Tensor seed = gradOutputs[i];
    if (!seed.defined()) {
      TORCH_CHECK(out.numel() == 1, who, ": grad can be implicitly created only for scalar outputs, got outputs[", i, "] of shape ",
                  out.sizes(), " (give gradOutputs)");
      seed = at::ones_like(out, at::MemoryFormat::Contiguous);
    } else {
      TORCH_CHECK(seed.sizes() == out.sizes(), who, ": Mismatch in shape: gradOutputs[", i, "] has a shape of ", seed.sizes(),
                  " and outputs[", i, "] has a shape of ", out.sizes());
    }
    seeds.push_back(std::move(seed));
  }
  for (size_t j = 0; j < inputs.size(); ++j)
    TORCH_CHECK(inputs[j].requires_grad(), who, ": One of the differentiated Tensors does not require grad: inputs[", j, "] (shape ",
                inputs[j].sizes(), ")");
  // Unused inputs are found here rather than by the engine, so that the error can name the input.
  std::vector<at::Tensor> grads =
      torch::autograd::grad(outputs, inputs, seeds, options.retainGraph, options.createGraph, /*allow_unused=*/true);
  if (!options.allowUnused)
    for (size_t j = 0; j < grads.size(); ++j)
      TORCH_CHECK(grads[j].defined(), who, ": One of the differentiated Tensors appears to not have been used in the graph: inputs[", j,
                  "] (shape ", inputs[j].sizes(), "). Set allowUnused: true if this is the desired behavior.");
  return grads;
}

}  // namespace ltg
