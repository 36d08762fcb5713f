#include "dist.h"

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace ltg {

struct DistGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

namespace {
void wait(const c10::intrusive_ptr<c10d::Work>& w, const char* what) {
  try {
    w->wait();
  } catch (const std::exception& e) {
    TORCH_CHECK(false, what, " failed: ", e.what());
  }
}

c10d::ReduceOp reduceOp(const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "max") return c10d::ReduceOp::MAX;
  TORCH_CHECK(false, "allReduce: op must be 'sum', 'product', 'min', 'max' or 'avg', got '", op, "'");
}
}  // namespace

DistGroup::DistGroup(const DistOptions& o) : impl_(std::make_unique<Impl>()), opts_(o) {
  TORCH_CHECK(o.worldSize >= 1, "initProcessGroup: worldSize must be at least 1, got ", o.worldSize);
  TORCH_CHECK(o.rank >= 0 && o.rank < o.worldSize, "initProcessGroup: rank must be in [0, ", o.worldSize, "), got ", o.rank);
  TORCH_CHECK(o.port > 0 && o.port < 65536, "initProcessGroup: port must be in [1, 65535], got ", o.port);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.port);
  so.isServer = o.rank == 0 && !o.agentStore;
  so.numWorkers = o.worldSize;
  so.waitWorkers = false;
  so.timeout = o.timeout;
  so.multiTenant = true;  // as torch.distributed's rendezvous creates it
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    tcp = c10::make_intrusive<c10d::TCPStore>(o.host, so);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "initProcessGroup: cannot ", so.isServer ? "serve" : "reach", " the store at ", o.host, ":", o.port, " (rank ",
                o.rank, " of ", o.worldSize, "): ", e.what());
  }
  // torch.distributed.init_process_group's key space: PrefixStore("default_pg") around the rendezvous
  // store, then the group's name ("0", the first group) and the device ("cpu").
  auto pgStore = c10::make_intrusive<c10d::PrefixStore>(
      "cpu/", c10::make_intrusive<c10d::PrefixStore>("0/", c10::make_intrusive<c10d::PrefixStore>("default_pg", tcp)));
  impl_->store = tcp;
  try {
    impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pgStore, o.rank, o.worldSize,
                                                            c10d::ProcessGroupGloo::Options::create_default(o.timeout));
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "initProcessGroup: the Gloo group did not form (rank ", o.rank, " of ", o.worldSize, " via ", o.host, ":", o.port,
                "): ", e.what());
  }
}

DistGroup::~DistGroup() = default;

std::function<void()> DistGroup::allReduce(at::Tensor t, const std::string& op) {
  c10d::AllreduceOptions ao;
  ao.reduceOp = reduceOp(op == "avg" ? "sum" : op);
  // Gloo has no AVG: each rank divides by the world size first and the ranks sum, as DDP averages
  // gradients (on the calling thread: the waiting one runs no tensor math).
  if (op == "avg") t.div_(opts_.worldSize);
  std::vector<at::Tensor> v{t};
  auto w = impl_->pg->allreduce(v, ao);
  return [w]() { wait(w, "allReduce"); };
}

std::function<void()> DistGroup::broadcast(at::Tensor t, int src) {
  TORCH_CHECK(src >= 0 && src < opts_.worldSize, "broadcast: src must be in [0, ", opts_.worldSize, "), got ", src);
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions bo;
  bo.rootRank = src;
  auto w = impl_->pg->broadcast(v, bo);
  return [w]() { wait(w, "broadcast"); };
}

std::function<void()> DistGroup::allGather(const at::Tensor& t, std::shared_ptr<std::vector<at::Tensor>> out) {
  auto lists = std::make_shared<std::vector<std::vector<at::Tensor>>>(1);
  for (int i = 0; i < opts_.worldSize; ++i) (*lists)[0].push_back(at::empty_like(t));
  std::vector<at::Tensor> in{t.contiguous()};
  auto w = impl_->pg->allgather(*lists, in);
  return [w, lists, out]() {
    wait(w, "allGather");
    *out = (*lists)[0];
  };
}

std::function<void()> DistGroup::barrier() {
  auto w = impl_->pg->barrier();
  return [w]() { wait(w, "barrier"); };
}

}  // namespace ltg
