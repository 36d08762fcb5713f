#include "optim.h"

#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <algorithm>
#include <cmath>

namespace ltg {

namespace {
// What an update reads is checked before it touches memory: the fused and capturable kernels index every
// tensor by its parameter's elements (a short gradient or state was read and written out of bounds), and
// the single-tensor ops would broadcast a wrong shape silently. `raw`: a kernel walks the memory flat.
void checkLike(const char* who, size_t i, const char* what, const at::Tensor& t, const at::Tensor& p, bool raw) {
  TORCH_CHECK(t.sizes() == p.sizes(), who, ": params[", i, "]: ", what, " has shape ", t.sizes(), ", expected the parameter's shape ",
              p.sizes());
  TORCH_CHECK(t.scalar_type() == p.scalar_type(), who, ": params[", i, "]: ", what, " has dtype ", t.scalar_type(),
              ", expected the parameter's dtype ", p.scalar_type());
  TORCH_CHECK(t.device() == p.device(), who, ": params[", i, "]: ", what, " is on ", t.device(), ", expected the parameter's device ",
              p.device());
  if (raw) TORCH_CHECK(t.is_contiguous(), who, ": params[", i, "]: ", what, " is not contiguous (a fused update walks it flat)");
}

// The step count of a capturable update: a 0-dim float32 tensor on the parameter's device.
void checkStepTensor(const char* who, size_t i, const at::Tensor& t, const at::Tensor& p) {
  TORCH_CHECK(t.dim() == 0 && t.scalar_type() == at::kFloat && t.device() == p.device(), who, ": params[", i,
              "]: step must be a 0-dim float32 tensor on the parameter's device, got shape ", t.sizes(), ", ", t.scalar_type(), " on ",
              t.device());
}

void append(std::vector<at::Tensor>& out, const at::Tensor& t) {
  if (t.defined()) out.push_back(t);
}
}  // namespace

const at::Tensor& Optimizer::lrTensor(const at::Device& device) {
  if (!lrT_.defined() || lrT_.device() != device) {
    if (lrT_.defined()) ++version;  // a new tensor: a graph captured before reads the old one
    at::ScalarType dtype = device.is_cuda() ? at::kFloat : at::kDouble;
    lrT_ = at::full({}, lr, at::TensorOptions().dtype(dtype).device(device));
    lrTValue_ = lr;
  } else if (lrTValue_ != lr) {
    lrT_.fill_(lr);
    lrTValue_ = lr;
  }
  return lrT_;
}

Adam::Adam(std::vector<at::Tensor> params, double lr_, double b1, double b2, double eps_, double wd, bool ams, bool max, bool fused_)
    : Optimizer(std::move(params)), beta1(b1), beta2(b2), eps(eps_), weightDecay(wd), amsgrad(ams), maximize(max), fused(fused_) {
  lr = lr_;
  state.resize(params_.size());
}

// torch.optim.adam._single_tensor_adam, non-capturable, non-differentiable branch.
void Adam::step() {
  at::NoGradGuard noGrad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor param = params_[i];
    if (!param.grad().defined()) continue;
    auto& st = state[i];
    bool raw = fused && param.device().is_cpu() && param.scalar_type() == at::kFloat && param.is_contiguous();
    checkLike("Adam.step", i, "grad", param.grad(), param, false);
    if (st) {
      checkLike("Adam.step", i, "exp_avg", st->expAvg, param, raw);
      checkLike("Adam.step", i, "exp_avg_sq", st->expAvgSq, param, raw);
      if (st->maxExpAvgSq.defined()) checkLike("Adam.step", i, "max_exp_avg_sq", st->maxExpAvgSq, param, raw);
    }
    at::Tensor grad = maximize ? -param.grad() : param.grad();
    if (!st) {
      st.emplace();
      st->expAvg = at::zeros_like(param, at::MemoryFormat::Preserve);
      st->expAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      if (amsgrad) st->maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
    }
    if (st->stepT.defined()) {
      // Back from capturable updates: the count moves to the host, so a captured graph is stale.
      st->step = st->stepT.item<double>();
      st->stepT.reset();
      ++version;
    }
    st->step += 1;
    if (raw) {
      if (amsgrad && !st->maxExpAvgSq.defined()) st->maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
      fusedStep(param, param.grad().contiguous(), *st);  // the raw gradient: the kernel applies maximize itself
      continue;
    }
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

// torch.optim.adam._fused_adam: PyTorch's fused kernel over all parameters, step counts and lr on the device.
void Adam::stepCapturable(const at::Tensor& foundInf) {
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> ps, gs, ms, vs, vmax, steps;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& param = params_[i];
    if (!param.grad().defined()) continue;
    auto& st = state[i];
    TORCH_CHECK(param.is_contiguous(), "Adam (capturable): params[", i, "] is not contiguous (the fused update walks it flat)");
    checkLike("Adam (capturable)", i, "grad", param.grad(), param, false);
    if (st) {
      checkLike("Adam (capturable)", i, "exp_avg", st->expAvg, param, true);
      checkLike("Adam (capturable)", i, "exp_avg_sq", st->expAvgSq, param, true);
      if (st->maxExpAvgSq.defined()) checkLike("Adam (capturable)", i, "max_exp_avg_sq", st->maxExpAvgSq, param, true);
      if (st->stepT.defined()) checkStepTensor("Adam (capturable)", i, st->stepT, param);
    }
    if (!st) {
      st.emplace();
      st->expAvg = at::zeros_like(param, at::MemoryFormat::Preserve);
      st->expAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
    }
    if (amsgrad && !st->maxExpAvgSq.defined()) st->maxExpAvgSq = at::zeros_like(param, at::MemoryFormat::Preserve);
    if (!st->stepT.defined()) st->stepT = at::full({}, st->step, at::TensorOptions().dtype(at::kFloat).device(param.device()));
    ps.push_back(param);
    gs.push_back(param.grad().contiguous());
    ms.push_back(st->expAvg);
    vs.push_back(st->expAvgSq);
    if (amsgrad) vmax.push_back(st->maxExpAvgSq);
    steps.push_back(st->stepT);
  }
  if (ps.empty()) return;
  if (foundInf.defined())
    TORCH_CHECK(foundInf.numel() == 1 && foundInf.scalar_type() == at::kFloat && foundInf.device() == ps[0].device(),
                "Adam (capturable): found_inf must be one float32 on the parameters' device");
  // A skipped update leaves the count too: add 1 - foundInf.
  if (foundInf.defined()) at::_foreach_add_(steps, at::rsub(foundInf, 1));
  else at::_foreach_add_(steps, 1);
  at::_fused_adam_(ps, gs, ms, vs, vmax, steps, lrTensor(ps[0].device()), beta1, beta2, weightDecay, eps, amsgrad, maximize, std::nullopt,
                   foundInf.defined() ? std::optional<at::Tensor>(foundInf) : std::nullopt);
}

namespace {
// One chunk of the fused update. Cloned for AVX-512, AVX2 and baseline x86-64 (picked at load by the
// CPU) so the compiler vectorizes it; optim.cc is built with -O3 -fno-math-errno for that.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void adamChunk(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n, float omb1, float b2,
               float omb2, float wd, float e, float bc2s, float negStep, bool neg) {
  for (int64_t j = 0; j < n; ++j) {
    float gr = neg ? -g[j] : g[j];
    gr = gr + wd * p[j];
    float mj = m[j] + omb1 * (gr - m[j]);
    float vj = v[j] * b2 + omb2 * gr * gr;
    m[j] = mj;
    v[j] = vj;
    p[j] = p[j] + negStep * (mj / (std::sqrt(vj) / bc2s + e));
  }
}
}  // namespace

// The single-tensor update's arithmetic, element by element in float, in one parallel pass.
void Adam::fusedStep(at::Tensor& param, const at::Tensor& grad, AdamState& st) {
  float* p = param.data_ptr<float>();
  const float* g = grad.data_ptr<float>();
  float* m = st.expAvg.data_ptr<float>();
  float* v = st.expAvgSq.data_ptr<float>();
  float* vmax = amsgrad ? st.maxExpAvgSq.data_ptr<float>() : nullptr;
  const float omb1 = float(1 - beta1), b2 = float(beta2), omb2 = float(1 - beta2), wd = float(weightDecay), e = float(eps);
  const float bc2s = float(std::sqrt(1 - std::pow(beta2, st.step)));
  const float negStep = float(-(lr / (1 - std::pow(beta1, st.step))));
  const bool neg = maximize;
  at::parallel_for(0, param.numel(), 16384, [&](int64_t begin, int64_t end) {
    if (!vmax) {
      adamChunk(p + begin, g + begin, m + begin, v + begin, end - begin, omb1, b2, omb2, wd, e, bc2s, negStep, neg);
      return;
    }
    for (int64_t j = begin; j < end; ++j) {
      float gr = neg ? -g[j] : g[j];
      if (wd != 0) gr = gr + wd * p[j];
      m[j] = m[j] + omb1 * (gr - m[j]);
      v[j] = v[j] * b2 + omb2 * gr * gr;
      float vv = v[j];
      if (vmax) vv = vmax[j] = std::max(vmax[j], vv);
      float denom = std::sqrt(vv) / bc2s + e;
      p[j] = p[j] + negStep * (m[j] / denom);
    }
  });
}

SGD::SGD(std::vector<at::Tensor> params, double lr_, double m, double d, double wd, bool n, bool max)
    : Optimizer(std::move(params)), momentum(m), dampening(d), weightDecay(wd), nesterov(n), maximize(max) {
  lr = lr_;
  momentumBuffer.resize(params_.size());
}

// torch.optim.sgd._fused_sgd.
void SGD::stepCapturable(const at::Tensor& foundInf) {
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> ps, gs, bufs;
  bool first = momentum != 0;
  for (size_t i = 0; i < params_.size(); ++i) {
    const at::Tensor& param = params_[i];
    if (!param.grad().defined()) continue;
    TORCH_CHECK(param.is_contiguous(), "SGD (capturable): params[", i, "] is not contiguous (the fused update walks it flat)");
    checkLike("SGD (capturable)", i, "grad", param.grad(), param, false);
    if (momentumBuffer[i].defined()) checkLike("SGD (capturable)", i, "momentum_buffer", momentumBuffer[i], param, true);
    ps.push_back(param);
    gs.push_back(param.grad().contiguous());
    if (momentum != 0 && momentumBuffer[i].defined()) first = false;
  }
  if (ps.empty()) return;
  if (momentum != 0) {
    for (size_t i = 0; i < params_.size(); ++i) {
      if (!params_[i].grad().defined()) continue;
      at::Tensor& buf = momentumBuffer[i];
      // The first step copies the gradient in (empty is enough); a late parameter starts from zero.
      if (!buf.defined()) buf = first ? at::empty_like(params_[i]) : at::zeros_like(params_[i]);
      bufs.push_back(buf);
    }
  }
  if (foundInf.defined())
    TORCH_CHECK(foundInf.numel() == 1 && foundInf.scalar_type() == at::kFloat && foundInf.device() == ps[0].device(),
                "SGD (capturable): found_inf must be one float32 on the parameters' device");
  at::_fused_sgd_(ps, gs, bufs, weightDecay, momentum, lrTensor(ps[0].device()), dampening, nesterov, maximize, first, std::nullopt,
                  foundInf.defined() ? std::optional<at::Tensor>(foundInf) : std::nullopt);
}

// torch.optim.sgd._single_tensor_sgd.
void SGD::step() {
  at::NoGradGuard noGrad;
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor param = params_[i];
    if (!param.grad().defined()) continue;
    checkLike("SGD.step", i, "grad", param.grad(), param, false);
    if (momentumBuffer[i].defined()) checkLike("SGD.step", i, "momentum_buffer", momentumBuffer[i], param, false);
    at::Tensor grad = maximize ? -param.grad() : param.grad();
    if (weightDecay != 0) grad = grad.add(param, weightDecay);
    if (momentum != 0) {
      at::Tensor& buf = momentumBuffer[i];
      if (!buf.defined()) {
        buf = grad.clone().detach();
        ++version;  // a new buffer: a graph captured before it would not see it
      } else buf.mul_(momentum).add_(grad, 1 - dampening);
      grad = nesterov ? grad.add(buf, momentum) : buf;
    }
    param.add_(grad, -lr);
  }
}

std::vector<at::Tensor> Adam::stateTensors() const {
  std::vector<at::Tensor> out;
  for (const auto& st : state) {
    if (!st) continue;
    append(out, st->expAvg);
    append(out, st->expAvgSq);
    append(out, st->maxExpAvgSq);
    append(out, st->stepT);
  }
  return out;
}

std::vector<at::Tensor> SGD::stateTensors() const {
  std::vector<at::Tensor> out;
  for (const auto& b : momentumBuffer) append(out, b);
  return out;
}

}  // namespace ltg
