// A c10d process group (LibTorch's own distributed engine: TCPStore for rendezvous, ProcessGroupGloo or
// ProcessGroupNCCL for the collectives), keyed and prefixed as torch.distributed's default group is, so
// our ranks and PyTorch's can share one group. Plain C++ over LibTorch; the N-API side is dist_wrap.cc.
#pragma once
#include <ATen/ATen.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ltg {

struct DistOptions {
  std::string host = "127.0.0.1";
  int port = 29500;
  int rank = 0, worldSize = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};
  // Under torchrun's agent (TORCHELASTIC_USE_AGENT_STORE=True) the agent serves the store: every rank,
  // rank 0 included, connects as a client.
  bool agentStore = false;
  // "gloo" (CPU tensors) or "nccl" (CUDA tensors on `device`, this rank's GPU).
  std::string backend = "gloo";
  c10::Device device = c10::Device(c10::kCPU);
};

// Empty when this binary can form NCCL groups with the LibTorch it runs on; else what is missing
// ("this LibTorch (2.15.0) was built without CUDA", ...). Says nothing about GPUs (cuda_status.h).
std::string ncclMissing();
// The NCCL version LibTorch runs with ("2.30.7"), or empty where ncclMissing() is not.
std::string ncclVersion();
// Throws the error initProcessGroup gives for `o` before any connection is tried: an NCCL group on a
// binary or LibTorch without NCCL, or on a machine whose GPU cannot be used.
void checkBackend(const DistOptions& o);
// Makes `device` (a usable cuda:N) the calling thread's current CUDA device, as torch.cuda.set_device: an
// NCCL rank's 'cuda' then means its own GPU. Only where ncclMissing() is empty.
void makeCurrentCudaDevice(const c10::Device& device);

class DistGroup {
 public:
  // Connects to (rank 0 without an agent store: serves) the TCPStore at host:port and builds the Gloo
  // or NCCL group; blocks until every rank has joined or the timeout has passed (NCCL: the communicator
  // is formed here, not at the first collective).
  explicit DistGroup(const DistOptions& o);
  ~DistGroup();
  int rank() const { return opts_.rank; }
  int worldSize() const { return opts_.worldSize; }
  const std::string& backend() const { return opts_.backend; }
  bool nccl() const { return opts_.backend == "nccl"; }
  // NCCL: the GPU every collective's tensors must be on. Gloo: the CPU.
  c10::Device device() const { return opts_.device; }
  // Each collective is queued at once, in call order (c10d requires the same order on every rank), and
  // returns the wait that completes it (blocking; run it off the event loop). NCCL's wait orders the
  // GPU's later work after the collective (the default stream waits for it), as PyTorch's work.wait().
  // allReduce works in place, as torch.distributed's: op is sum, product, min, max or avg (avg: each
  // rank's tensor divided by the world size, then summed, as DDP averages; Gloo has no avg).
  std::function<void()> allReduce(at::Tensor t, const std::string& op);
  std::function<void()> broadcast(at::Tensor t, int src);
  // The wait fills `out` with one tensor per rank.
  std::function<void()> allGather(const at::Tensor& t, std::shared_ptr<std::vector<at::Tensor>> out);
  std::function<void()> barrier();
  // destroyProcessGroup: later collectives are errors, even through a GanStep that holds the group. NCCL's
  // communicators are shut down here (in-flight collectives complete first), not whenever the last holder
  // lets go: a process must not exit with them alive.
  void shutdown();

 private:
  // NCCL takes tensors on the group's GPU only: one message naming it, before c10d's own.
  void checkTensor(const at::Tensor& t, const char* who) const;
  void checkOpen(const char* who) const;
  // "rank r of n via host:port, timeout t ms": what a failed collective's message names.
  std::string where() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistOptions opts_;
  std::atomic<bool> closed_{false};
};

}  // namespace ltg
