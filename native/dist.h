// A c10d process group (LibTorch's own distributed engine: TCPStore for rendezvous, ProcessGroupGloo for
// the collectives), keyed and prefixed as torch.distributed's default group is, so our ranks and PyTorch's
// can share one group. Plain C++ over LibTorch; the N-API side is dist_wrap.cc.
#pragma once
#include <ATen/ATen.h>

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
};

class DistGroup {
 public:
  // Connects to (rank 0 without an agent store: serves) the TCPStore at host:port and builds the Gloo
  // group; blocks until every rank has joined or the timeout has passed.
  explicit DistGroup(const DistOptions& o);
  ~DistGroup();
  int rank() const { return opts_.rank; }
  int worldSize() const { return opts_.worldSize; }
  // Each collective is queued at once, in call order (c10d requires the same order on every rank), and
  // returns the wait that completes it (blocking; run it off the event loop).
  // allReduce works in place, as torch.distributed's: op is sum, product, min, max or avg (Gloo has no
  // avg: each rank's tensor divided by the world size, then summed, as DDP averages).
  std::function<void()> allReduce(at::Tensor t, const std::string& op);
  std::function<void()> broadcast(at::Tensor t, int src);
  // The wait fills `out` with one tensor per rank.
  std::function<void()> allGather(const at::Tensor& t, std::shared_ptr<std::vector<at::Tensor>> out);
  std::function<void()> barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistOptions opts_;
};

}  // namespace ltg
