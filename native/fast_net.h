// One network of the fused step's fast path (fast_path.h): a Sequential of Linear, Conv2d, ConvTranspose2d,
// ReLU, LeakyReLU, Tanh, Sigmoid, Dropout, BatchNorm1d/2d, Flatten and Unflatten layers as ops over numbered
// buffers kept per batch size, with its forward and backward written out (no autograd graph). Matrix
// products, BatchNorm and activations write into the buffers; a convolution's kernel returns its own
// tensor, which the buffer then holds. Each backward calls the very ATen kernel autograd would
// (convolution_backward, native_batch_norm_backward, threshold_backward, ...). A batch may be two halves
// (D's real and fake batches) that BatchNorm sees alone. Convolutional nets run channels-last on the CPU,
// their thin layers as products (conv_gemm.h). Plain C++ over LibTorch.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <map>
#include <string>
#include <vector>

#include "sequential.h"

namespace ltg {

// One network of the fast path: its layers as ops over numbered buffers, and those buffers per batch size.
class FastNet {
 public:
  // Why this Sequential cannot run on the fast path (empty: it can).
  static std::string unsupported(const Sequential& s, const char* which);
  explicit FastNet(const Sequential& s);

  // Buffers for up to `rows` rows (kept for every size asked; each is allocated at its first use, in the
  // shape and memory format of what is written to it).
  void reserve(int64_t rows);
  // Draws the dropout masks of rows [start, start + rows) in layer order, as one forward pass would.
  void drawMasks(int64_t start, int64_t rows);
  // Forward over `rows` rows of input (masks drawn before); BatchNorm sees each of `halves` row blocks alone
  // (at most 2).
  at::Tensor forward(const at::Tensor& input, int64_t rows, int64_t halves);
  // The gradient of the output rows [start, start + rows), to be written before backward().
  at::Tensor outputGrad(int64_t start, int64_t rows);
  // Backward over rows [start, start + rows) of the last forward (input: those rows of its input) from
  // outputGrad(): parameter gradients when weightGrads, the input's gradient into inputGrad when defined.
  void backward(const at::Tensor& input, int64_t start, int64_t rows, int64_t halves, bool weightGrads, const at::Tensor& inputGrad);
  // Sets each parameter's .grad to its gradient buffer (what the optimizer then reads).
  void attachGrads();
  // The memory format the net computes in (channels-last for convolutional nets on the CPU).
  at::MemoryFormat format() const { return format_; }

  const Sequential& seq;

 private:
  enum class Op { Linear, Conv, Act, Dropout, BatchNorm, Reshape };
  struct Node {
    Op op;
    size_t layer;  // index in seq.layers
    int in;   // buffer read (-1: the net's input)
    int out;  // buffer written (== in for an in-place activation)
  };
  struct Buffers {
    int64_t rows = 0;
    std::vector<at::Tensor> vals, grads;  // per buffer: [rows, ...] (a convolution's may hold fewer rows: its last call's)
    std::vector<at::Tensor> masks;        // per node (dropout only)
    std::vector<std::array<at::Tensor, 2>> saveMean, saveInvstd;  // per node (BatchNorm only), per half
  };
  Buffers& current();
  const Buffers& current() const;
  // Rows [start, start + rows) of buffer slot `t`, (re)allocated to the reserved rows of samples of sizes
  // `sample` (channels-last when they are [C, H, W] in a convolutional net on the CPU) when it is missing,
  // too small or differently shaped.
  at::Tensor take(at::Tensor& t, int64_t start, int64_t rows, at::IntArrayRef sample) const;
  // x in the net's memory format (a copy when it is not).
  at::Tensor inFormat(const at::Tensor& x) const;
  void activationBackward(const Node& nd, const at::Tensor& dY, const at::Tensor& y, const at::Tensor& dX) const;
  std::vector<Node> nodes_;
  int buffers_ = 0;
  std::vector<int64_t> maskWidths_;  // per layer: a Dropout's mask width (its MLP's last Linear's)
  std::vector<std::array<at::Tensor, 2>> layerGrads_;  // per layer: its weight's and bias's gradient buffers
  std::map<int64_t, Buffers> byRows_;
  int64_t rows_ = 0;
  at::TensorOptions opts_;
  at::MemoryFormat format_ = at::MemoryFormat::Contiguous;
};

}  // namespace ltg
