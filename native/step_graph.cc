#include "step_graph.h"

#include <c10/core/DeviceGuard.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <map>
#include <mutex>

#if LTG_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#endif

namespace ltg {

bool cudaGraphsCompiled() {
#if LTG_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {
// One side stream per device for the process: warm-up, capture and replays then share a stream, so
// the per-stream state they create (cuBLAS workspaces) exists before capture, as PyTorch's recipe has it.
c10::Stream sideStreamFor(const c10::impl::VirtualGuardImpl& impl, at::Device d) {
  static std::mutex mu;
  static std::map<int, c10::Stream> streams;
  std::lock_guard<std::mutex> lock(mu);
  auto it = streams.find(d.index());
  if (it == streams.end()) it = streams.emplace(d.index(), impl.getStreamFromGlobalPool(d)).first;
  return it->second;
}
}  // namespace

// Streams and events through c10's device-generic interface: no CUDA headers needed here.
struct SideStream::Impl {
  c10::impl::VirtualGuardImpl impl{c10::DeviceType::CUDA};
  c10::DeviceGuard deviceGuard;
  c10::Stream prev, side;
  explicit Impl(at::Device d) : deviceGuard(d), prev(impl.getStream(d)), side(sideStreamFor(impl, d)) {
    c10::Event ready(c10::DeviceType::CUDA);
    ready.record(prev);
    ready.block(side);
    impl.exchangeStream(side);
  }
  ~Impl() {
    try {
      c10::Event done(c10::DeviceType::CUDA);
      done.record(side);
      done.block(prev);
    } catch (const std::exception&) {
      // A failing device reports itself on the next call; the stream is restored regardless.
    }
    impl.exchangeStream(prev);
  }
};

SideStream::SideStream(at::Device device) {
  if (device.is_cuda()) impl_ = std::make_unique<Impl>(device.has_index() ? device : at::Device(at::kCUDA, 0));
}
SideStream::~SideStream() = default;

#if LTG_WITH_CUDA
struct StepGraph::Impl {
  at::cuda::CUDAGraph graph;
  bool ready = false;
};

bool StepGraph::capture(const std::function<void()>& fn, std::string& why) {
  auto fail = [&](const std::string& what) {
    why = what;
    try {
      impl_->graph.capture_end();  // leaves capture mode; throws for an invalidated capture
    } catch (const std::exception&) {
    }
    return false;
  };
  try {
    // Thread-local mode: CUDA work of other threads (the JS thread, say) neither breaks the capture nor
    // is captured; autograd's device thread launches onto the capturing stream and is captured.
    impl_->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  } catch (const c10::Error& e) {
    why = e.what_without_backtrace();
    return false;
  }
  try {
    fn();
  } catch (const c10::Error& e) {
    return fail(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  try {
    impl_->graph.capture_end();
  } catch (const c10::Error& e) {
    why = e.what_without_backtrace();
    return false;
  }
  impl_->ready = true;
  return true;
}

void StepGraph::replay() {
  TORCH_CHECK(impl_->ready, "CUDA graph: replay before a successful capture");
  impl_->graph.replay();
}
#else
struct StepGraph::Impl {};

bool StepGraph::capture(const std::function<void()>&, std::string& why) {
  why = "this build has no CUDA graph support (LibTorch's CUDA headers were not found at build time)";
  return false;
}

void StepGraph::replay() { TORCH_CHECK(false, "CUDA graph: this build has no CUDA graph support"); }
#endif

StepGraph::StepGraph() : impl_(std::make_unique<Impl>()) {}
StepGraph::~StepGraph() = default;

}  // namespace ltg
