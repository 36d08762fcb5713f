// Optimizers as plain C++ over LibTorch, written to follow PyTorch's single-tensor implementations
// (torch/optim/adam.py, sgd.py) operation for operation, so results match Python's torch.optim.
// The facade's optim.Adam and the fused GAN step share one instance, so they share state.
#pragma once
#include <ATen/ATen.h>

#include <mutex>
#include <optional>
#include <vector>

namespace ltg {

class Optimizer {
 public:
  explicit Optimizer(std::vector<at::Tensor> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  // set_to_none=True, PyTorch's default since 2.0.
  void zeroGrad() {
    for (auto& p : params_) p.mutable_grad().reset();
  }
  const std::vector<at::Tensor>& params() const { return params_; }
  double lr = 1e-3;

 protected:
  std::vector<at::Tensor> params_;
};

struct AdamState {
  double step = 0;  // PyTorch keeps a float32 scalar tensor; the value is an exact small integer
  at::Tensor expAvg, expAvgSq, maxExpAvgSq;
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<at::Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad, bool maximize,
       bool fused = false);
  void step() override;
  double beta1, beta2, eps, weightDecay;
  bool amsgrad, maximize;
  // PyTorch's fused=True: one pass over each parameter (float32 on CPU) instead of ~8 tensor ops; the
  // same arithmetic, so results match the single-tensor update to rounding (not bit for bit).
  bool fused;
  std::vector<std::optional<AdamState>> state;  // one per parameter; empty until its first step

 private:
  void fusedStep(at::Tensor& param, const at::Tensor& grad, AdamState& st);
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<at::Tensor> params, double lr, double momentum, double dampening, double weightDecay, bool nesterov, bool maximize);
  void step() override;
  double momentum, dampening, weightDecay;
  bool nesterov, maximize;
  std::vector<at::Tensor> momentumBuffer;  // undefined until first step with momentum
};

}  // namespace ltg
