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
  // The sync-free update of the fused step on a device, as PyTorch's fused/capturable optimizers: the
  // bookkeeping stays on the device and nothing is read back, so a CUDA graph can capture it. Where
  // foundInf (a 0-dim float tensor, or undefined) is 1 the update is skipped, on the device.
  virtual void stepCapturable(const at::Tensor& foundInf) = 0;
  // set_to_none=True, PyTorch's default since 2.0.
  void zeroGrad() {
    for (auto& p : params_) p.mutable_grad().reset();
  }
  const std::vector<at::Tensor>& params() const { return params_; }
  // Every state tensor an update reads or writes (what a running epoch locks, see epoch_lock.h).
  virtual std::vector<at::Tensor> stateTensors() const = 0;
  double lr = 1e-3;
  // Bumped by host-side changes a captured CUDA graph cannot see: state loaded, or a non-capturable
  // step that replaced state tensors. A new lr is not one: the capturable kernels read it from lrTensor.
  uint64_t version = 0;
  // lr as the 0-dim tensor on `device` that the capturable updates read, so that a captured CUDA graph
  // reads it at each replay: a new lr (a scheduler's) is a fill of it here, not a recapture. Filled when
  // lr changed since; call it before a capture (a fill inside one would be replayed with the old value).
  // float32 on CUDA (PyTorch's fused CUDA kernels read a float), float64 on the CPU (its kernels read it
  // back as a double: the same number as a plain lr).
  const at::Tensor& lrTensor(const at::Device& device);

 protected:
  std::vector<at::Tensor> params_;

 private:
  at::Tensor lrT_;
  double lrTValue_ = 0;
};

struct AdamState {
  double step = 0;  // PyTorch keeps a float32 scalar tensor; the value is an exact small integer
  at::Tensor expAvg, expAvgSq, maxExpAvgSq;
  // The step count on the parameter's device (float32, 0-dim) once capturable updates ran; while
  // defined it, not `step`, holds the count.
  at::Tensor stepT;
  double stepCount() const { return stepT.defined() ? stepT.item<double>() : step; }
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<at::Tensor> params, double lr, double beta1, double beta2, double eps, double weightDecay, bool amsgrad, bool maximize,
       bool fused = false);
  void step() override;
  void stepCapturable(const at::Tensor& foundInf) override;
  std::vector<at::Tensor> stateTensors() const override;
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
  void stepCapturable(const at::Tensor& foundInf) override;
  std::vector<at::Tensor> stateTensors() const override;
  double momentum, dampening, weightDecay;
  bool nesterov, maximize;
  std::vector<at::Tensor> momentumBuffer;  // undefined until first step with momentum
};

}  // namespace ltg
