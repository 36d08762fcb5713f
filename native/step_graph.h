// CUDA graph capture of the fused step, and the side stream it runs on, behind an interface with no
// CUDA headers: only step_graph.cc includes them, and only in builds that have them (LTG_WITH_CUDA).
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

namespace ltg {

// True when this binary can capture CUDA graphs (a CUDA LibTorch and its CUDA headers at build time).
bool cudaGraphsCompiled();

// While alive, a pooled non-default stream is current on a CUDA device, ordered after the caller's
// stream; on exit the caller's stream is ordered after it. CUDA graphs are captured on such a stream.
// A no-op for a CPU device.
class SideStream {
 public:
  explicit SideStream(at::Device device);
  ~SideStream();
  SideStream(const SideStream&) = delete;
  SideStream& operator=(const SideStream&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One captured CUDA graph (at::cuda::CUDAGraph: a private memory pool, graph-safe RNG offsets).
class StepGraph {
 public:
  StepGraph();
  ~StepGraph();
  StepGraph(const StepGraph&) = delete;
  StepGraph& operator=(const StepGraph&) = delete;
  // Records fn's kernels on the current stream, which must be a side stream, without running them.
  // False, with the reason in why, when capture failed; the graph is then unusable.
  bool capture(const std::function<void()>& fn, std::string& why);
  void replay();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ltg
