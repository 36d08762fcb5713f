#include "optim.h"

#include <c10/core/GradMode.h>
#include <cmath>

namespace ltg {

Adam::Adam(std::vector<at::Tensor> params, double lr_, double b1, double b2, double eps_, double wd, bool ams, bool max)
    : Optimizer(std::move(params)), beta1(b1), beta2(b2), eps(eps_), weightDecay(wd), amsgrad(ams), maximize(max) {
  lr = lr_;
  state.resize(params_.size());
}

// torch.optim.adam._single_tensor_adam, non-capturable, non-differentiable branch.
void Adam::step() {
  at::NoGradGuard noGrad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor param = params_[i];
    if (!param.grad().defined()) continue;
    at::Tensor grad = maximize ? -param.grad() : param.grad();
    auto& st = state[i];
    if (!st) {
      st.emplace();
      st->expAvg = at::zeros_like(param, at::MemoryFormat::Preserve);
      st->expAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      if (amsgrad) st->maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
    }
    st->step += 1;
    if (weightDecay != 0) grad = grad.add(param, weightDecay);
    st->expAvg.lerp_(grad, 1 - beta1);
    st->expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    double biasCorrection1 = 1 - std::pow(beta1, st->step);
    double biasCorrection2 = 1 - std::pow(beta2, st->step);
    double stepSize = lr / biasCorrection1;
    double biasCorrection2Sqrt = std::sqrt(biasCorrection2);
    at::Tensor denom;
    if (amsgrad) {
      if (!st->maxExpAvgSq.defined()) st->maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      at::maximum_out(st->maxExpAvgSq, st->maxExpAvgSq, st->expAvgSq);
      denom = (st->maxExpAvgSq.sqrt() / biasCorrection2Sqrt).add_(eps);
    } else {
      denom = (st->expAvgSq.sqrt() / biasCorrection2Sqrt).add_(eps);
    }
    param.addcdiv_(st->expAvg, denom, -stepSize);
  }
}

SGD::SGD(std::vector<at::Tensor> params, double lr_, double m, double d, double wd, bool n, bool max)
    : Optimizer(std::move(params)), momentum(m), dampening(d), weightDecay(wd), nesterov(n), maximize(max) {
  lr = lr_;
  momentumBuffer.resize(params_.size());
}

// torch.optim.sgd._single_tensor_sgd.
void SGD::step() {
  at::NoGradGuard noGrad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor param = params_[i];
    if (!param.grad().defined()) continue;
    at::Tensor grad = maximize ? -param.grad() : param.grad();
    if (weightDecay != 0) grad = grad.add(param, weightDecay);
    if (momentum != 0) {
      at::Tensor& buf = momentumBuffer[i];
      if (!buf.defined()) buf = grad.clone().detach();
      else buf.mul_(momentum).add_(grad, 1 - dampening);
      grad = nesterov ? grad.add(buf, momentum) : buf;
    }
    param.add_(grad, -lr);
  }
}

}  // namespace ltg
