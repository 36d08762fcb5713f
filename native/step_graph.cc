#include "step_graph.h"

#include <c10/core/DeviceGuard.h>
#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <map>
#include <mutex>

#if LTG_WITH_CUDA
#include <ATen/core/CachingHostAllocator.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>

#include <utility>
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
namespace {
// at::cuda::CUDAGraph with read access to what its own cleanup depends on. What a failed capture leaves
// behind differs between the LibTorch versions this package supports (2.11 to 2.15):
// - 2.11: capture_end() throws at cudaStreamEndCapture for an invalidated capture before it ends the
//   allocator's routing to the graph's private pool, and reset() releases a pool only when capture_end()
//   completed (capture_ended_). The allocator then believes a capture is still underway: events are never
//   processed again, and emptying its cache trips its `captures_underway.empty()` assertion.
// - 2.15 (PyTorch #180395, #190348): capture_end() ends the routing before it throws, and reset() ends a
//   routing still on and releases the pool of any capture that acquired one (the allocated_pool_ flag).
// Which of the two this LibTorch does is read from its header (allocated_pool_) rather than its version
// number, so a version in between is handled by what it actually contains.
struct Graph : at::cuda::CUDAGraph {
  template <typename G = Graph>
  static constexpr auto resetReleasesFailedPools(int) -> decltype(std::declval<G&>().allocated_pool_, true) {
    return true;
  }
  static constexpr bool resetReleasesFailedPools(...) { return false; }

  bool captureEnded() const { return capture_ended_; }
  c10::DeviceIndex device() const { return capture_dev_; }
  c10::MempoolId_t pool() const { return mempool_id_; }
};
constexpr bool kResetReleasesFailedPools = Graph::resetReleasesFailedPools(0);

// Runs a cleanup step whatever it throws: a failure path must get through all of them.
template <typename F>
void attempt(F&& f) {
  try {
    f();
  } catch (const std::exception&) {
  }
}
}  // namespace

struct StepGraph::Impl {
  Graph graph;
  bool ready = false;

  // After a failed capture_begin (begun: false) or a failure after it: leaves no capture state behind
  // (the stream out of capture mode, the allocator routing nothing to the graph's pool, the pool
  // released, the generators' capture states and the capture registry cleared). The graph is unusable.
  void abandon(bool begun, bool ended) {
    // Ends the stream capture (a capture invalidated by an illegal call too: capture_end() throws then).
    if (begun && !ended) attempt([&] { graph.capture_end(); });
    if constexpr (!kResetReleasesFailedPools) {
      // capture_begin() acquired the pool when it got as far as routing allocations to it (ending that
      // routing succeeds), or when it returned. Ending routing that capture_end() already ended throws.
      // Before it picked a device and a pool there is nothing to end.
      bool routed = false;
      c10::MempoolId_t pool = graph.pool();
      c10::DeviceIndex device = graph.device();
      if (device >= 0 && (pool.first != 0 || pool.second != 0)) {
        attempt([&] {
          c10::cuda::CUDACachingAllocator::endAllocateToPool(device, pool);
          routed = true;
        });
        attempt([&] { at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool); });
      }
      bool acquired = begun || routed;
      // reset() releases the pool only of a capture that capture_end() completed.
      bool release = acquired && !graph.captureEnded();
      attempt([&] { graph.reset(); });
      if (release) {
        attempt([&] { c10::cuda::CUDACachingAllocator::releasePool(device, pool); });
        attempt([&] { at::getHostAllocator(at::kCUDA)->release_pool(pool); });
      }
    } else {
      attempt([&] { graph.reset(); });
    }
    ready = false;
  }
};

namespace {
std::string messageOf(const std::exception& e) {
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}
}  // namespace

bool StepGraph::capture(const std::function<void()>& fn, std::string& why) {
  Impl& g = *impl_;
  TORCH_CHECK(!g.ready, "CUDA graph: this graph was captured already");
  bool begun = false, ended = false;
  try {
    // Thread-local mode: CUDA work of other threads (the JS thread, say) neither breaks the capture nor
    // is captured; autograd's device thread launches onto the capturing stream and is captured.
    g.graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    begun = true;
    fn();
    ended = true;  // capture_end() runs once: a second call would end no capture and throw
    g.graph.capture_end();
  } catch (const std::exception& e) {
    why = messageOf(e);
    g.abandon(begun, ended);
    return false;
  }
  g.ready = true;
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
