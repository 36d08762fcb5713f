#include "dist.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <thread>

#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#ifdef LTG_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <nccl.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include "cuda_status.h"

namespace ltg {

struct DistGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
};

namespace {
// A nested error's text for our own message: c10::Error's without its C++ backtrace (the frames
// belong to a debugger, not to the line the CLI prints).
std::string textOf(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

// c10d logs each failed connect try, with the C++ frames of its exception, on stderr; the join's own
// error says what failed. Quiet while joining, unless TORCH_CPP_LOG_LEVEL asks for LibTorch's logs
// (the CLI sets it at --verbose 3).
class QuietC10Logs {
 public:
  QuietC10Logs() : old_(FLAGS_caffe2_log_level), quiet_(std::getenv("TORCH_CPP_LOG_LEVEL") == nullptr) {
    if (quiet_) FLAGS_caffe2_log_level = std::max(old_, int(c10::GLOG_FATAL));
  }
  ~QuietC10Logs() {
    if (quiet_) FLAGS_caffe2_log_level = old_;
  }
  QuietC10Logs(const QuietC10Logs&) = delete;
  QuietC10Logs& operator=(const QuietC10Logs&) = delete;

 private:
  int old_;
  bool quiet_;
};

// `where`: the rank, the group's store and its timeout, for the message of a collective that failed.
// Whether host:port accepts a TCP connection before `deadline`, retrying a refused or unreachable one
// every 50 ms. TCPStore's client retries with a full timeout per try (a 10 s timeout took 20 s); this
// wait is the one the deadline bounds, and TCPStore then connects at once.
bool reachableBefore(const std::string& host, int port, std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  for (;;) {
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) == 0) {
      std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
      for (addrinfo* a = list.get(); a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        std::unique_ptr<int, void (*)(int*)> closer(&fd, [](int* f) { close(*f); });
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) return true;
        if (errno != EINPROGRESS) continue;
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        pollfd p{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof(err);
        if (left > 0 && poll(&p, 1, int(std::min<int64_t>(left, 1000))) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
            err == 0)
          return true;
      }
    }
    if (Clock::now() + std::chrono::milliseconds(50) >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void wait(const c10::intrusive_ptr<c10d::Work>& w, const char* what, const std::string& where) {
  try {
    w->wait();
  } catch (const std::exception& e) {
    TORCH_CHECK(false, what, " failed (", where, "): ", textOf(e));
  }
}

c10d::ReduceOp reduceOp(const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "max") return c10d::ReduceOp::MAX;
  TORCH_CHECK(false, "allReduce: op must be 'sum', 'product', 'min', 'max' or 'avg', got '", op, "'");
}

#ifdef LTG_WITH_NCCL
// The options struct embeds nccl.h's ncclConfig_t: a header of another NCCL minor version than the
// library LibTorch loads could disagree with libtorch_cuda on its layout.
std::string ncclRuntimeMismatch() {
  auto [major, minor, patch] = c10d::getNcclVersionTuple();
  if (major == NCCL_MAJOR && minor == NCCL_MINOR) return "";
  return "LibTorch runs NCCL " + std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch) +
         " but the addon was built against nccl.h " + std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + "." +
         std::to_string(NCCL_PATCH) + ": rebuild the addon against this LibTorch's NCCL (node scripts/build-native.js)";
}
#endif
}  // namespace

std::string ncclMissing() {
#if defined(LTG_WITH_NCCL)
  static const std::string why = [] {
    try {
      return ncclRuntimeMismatch();
    } catch (const std::exception& e) {
      return std::string("LibTorch's NCCL library did not answer its version: ") + textOf(e);
    }
  }();
  return why;
#elif defined(LTG_NCCL_MISSING)
  return LTG_NCCL_MISSING;
#else
  return "this addon was built without NCCL support (node-gyp's fallback build leaves it out: build it with cmake, "
         "node scripts/build-native.js)";
#endif
}

std::string ncclVersion() {
#ifdef LTG_WITH_NCCL
  if (ncclMissing().empty()) return c10d::getNcclVersion();
#endif
  return "";
}

void checkBackend(const DistOptions& o) {
  if (o.backend == "gloo") {
    TORCH_CHECK(o.device.is_cpu(), "initProcessGroup: backend 'gloo' works on the CPU here; device ", o.device.str(),
                " needs backend 'nccl'");
    return;
  }
  TORCH_CHECK(o.backend == "nccl", "initProcessGroup: backend must be 'gloo' or 'nccl', got '", o.backend, "'");
  std::string missing = ncclMissing();
  TORCH_CHECK(missing.empty(), "initProcessGroup: backend 'nccl' needs a CUDA LibTorch built with NCCL: ", missing);
  TORCH_CHECK(o.device.is_cuda() && o.device.has_index(),
              "initProcessGroup: backend 'nccl' runs on one GPU: device must be 'cuda:N', got '", o.device.str(), "'");
  std::string why = deviceUnusableReason(c10::Device(c10::kCUDA));
  if (!why.empty()) {
    // The reason's own advice is for a device option; here the CPU's backend is the way out.
    const std::string cpuAdvice = "; use device 'cpu'";
    if (why.size() > cpuAdvice.size() && why.compare(why.size() - cpuAdvice.size(), cpuAdvice.size(), cpuAdvice) == 0)
      why.resize(why.size() - cpuAdvice.size());
    TORCH_CHECK(false, "initProcessGroup: backend 'nccl' needs a GPU: ", why, "; use backend 'gloo' (CPU)");
  }
  why = deviceUnusableReason(o.device);
  TORCH_CHECK(why.empty(), "initProcessGroup: backend 'nccl': ", why);
}

DistGroup::DistGroup(const DistOptions& o) : impl_(std::make_unique<Impl>()), opts_(o) {
  TORCH_CHECK(o.worldSize >= 1, "initProcessGroup: worldSize must be at least 1, got ", o.worldSize);
  TORCH_CHECK(o.rank >= 0 && o.rank < o.worldSize, "initProcessGroup: rank must be in [0, ", o.worldSize, "), got ", o.rank);
  TORCH_CHECK(o.port > 0 && o.port < 65536, "initProcessGroup: port must be in [1, 65535], got ", o.port);
  checkBackend(o);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.port);
  so.isServer = o.rank == 0 && !o.agentStore;
  so.numWorkers = o.worldSize;
  so.waitWorkers = false;
  so.timeout = o.timeout;
  so.multiTenant = true;  // as torch.distributed's rendezvous creates it
  // One deadline for the whole join: the store's connect, then the group's rendezvous gets what is left
  // (each with its own full timeout, a join took two or three times --dist-timeout).
  const auto deadline = std::chrono::steady_clock::now() + o.timeout;
  const auto left = [&] {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(ms, std::chrono::milliseconds(1));
  };
  const auto timeoutText = [&] { return std::to_string(o.timeout.count()) + " ms"; };
  QuietC10Logs quiet;
  if (!so.isServer)
    TORCH_CHECK(reachableBefore(o.host, o.port, deadline), "initProcessGroup: cannot reach the store at ", o.host, ":", o.port, " (rank ",
                o.rank, " of ", o.worldSize, ", timeout ", timeoutText(), "): nothing accepted a connection there within the timeout");
  so.timeout = left();
  c10::intrusive_ptr<c10d::Store> tcp;
  try {
    tcp = c10::make_intrusive<c10d::TCPStore>(o.host, so);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "initProcessGroup: cannot ", so.isServer ? "serve" : "reach", " the store at ", o.host, ":", o.port, " (rank ",
                o.rank, " of ", o.worldSize, ", timeout ", timeoutText(), "): ", textOf(e));
  }
  TORCH_CHECK(std::chrono::steady_clock::now() < deadline, "initProcessGroup: the store at ", o.host, ":", o.port,
              " answered only after the timeout (", timeoutText(), ", rank ", o.rank, " of ", o.worldSize, ")");
  tcp->setTimeout(left());
  // torch.distributed.init_process_group's key space: PrefixStore("default_pg") around the rendezvous
  // store, then the group's name ("0", the first group) and the device type ("cpu" for Gloo, "cuda" for NCCL).
  auto pgStore = c10::make_intrusive<c10d::PrefixStore>(
      nccl() ? "cuda/" : "cpu/", c10::make_intrusive<c10d::PrefixStore>("0/", c10::make_intrusive<c10d::PrefixStore>("default_pg", tcp)));
  impl_->store = tcp;
  const char* name = nccl() ? "NCCL" : "Gloo";
  try {
#ifdef LTG_WITH_NCCL
    if (nccl()) {
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = o.timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pgStore, o.rank, o.worldSize, opts);
      // As init_process_group(device_id=...): bound to this rank's GPU, the communicator formed now.
      pg->setBoundDeviceId(o.device);
      pg->eagerConnectSingleDevice(o.device);
      impl_->pg = pg;
    }
#endif
    if (!nccl())
      if (!nccl()) {
      // Formed within what is left of the deadline; the collectives then get the full timeout each.
        auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pgStore, o.rank, o.worldSize,
                                                              c10d::ProcessGroupGloo::Options::create_default(left()));
        pg->setTimeout(o.timeout);
        impl_->pg = pg;
      }
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "initProcessGroup: the ", name, " group did not form within the timeout of ", timeoutText(), " (rank ", o.rank,
                " of ", o.worldSize, " via ", o.host, ":", o.port, nccl() ? " on " + o.device.str() : std::string(), "): ", textOf(e));
  }
  tcp->setTimeout(o.timeout);
}

DistGroup::~DistGroup() { shutdown(); }

void DistGroup::shutdown() {
  if (closed_.exchange(true) || !impl_ || !impl_->pg || !nccl()) return;
  // Without shutdown() ProcessGroupNCCL's destructor warns on stderr and aborts its communicators;
  // shutdown() lets the collectives in flight complete first (Gloo's destructor does that itself).
  try {
    impl_->pg->shutdown();
  } catch (const std::exception&) {
    // a failed peer: the communicators are aborted by the destructor
  }
}

std::string DistGroup::where() const {
  return "rank " + std::to_string(opts_.rank) + " of " + std::to_string(opts_.worldSize) + " via " + opts_.host + ":" +
         std::to_string(opts_.port) + ", timeout " + std::to_string(opts_.timeout.count()) + " ms";
}

void DistGroup::checkOpen(const char* who) const { TORCH_CHECK(!closed_, who, ": the process group was destroyed (destroyProcessGroup)"); }

void makeCurrentCudaDevice(const c10::Device& device) {
  TORCH_CHECK(device.is_cuda() && device.has_index(), "makeCurrentCudaDevice: expected cuda:N, got ", device.str());
#ifdef LTG_WITH_NCCL
  c10::cuda::set_device(device.index());
#else
  TORCH_CHECK(false, "makeCurrentCudaDevice: this addon was built without NCCL (", ncclMissing(), ")");
#endif
}

void DistGroup::checkTensor(const at::Tensor& t, const char* who) const {
  if (!nccl() || t.device() == opts_.device) return;
  TORCH_CHECK(false, who, ": backend 'nccl' takes tensors on the group's GPU ", opts_.device.str(), ", got one on ", t.device().str(),
              " (move it with .to('", opts_.device.str(), "'))");
}

std::function<void()> DistGroup::allReduce(at::Tensor t, const std::string& op) {
  checkOpen("allReduce");
  checkTensor(t, "allReduce");
  c10d::AllreduceOptions ao;
  ao.reduceOp = reduceOp(op == "avg" ? "sum" : op);
  // Gloo has no AVG: each rank divides by the world size first and the ranks sum, as DDP averages
  // gradients (on the calling thread: the waiting one runs no tensor math). NCCL does the same, so
  // both backends average alike.
  if (op == "avg") t.div_(opts_.worldSize);
  std::vector<at::Tensor> v{t};
  auto w = impl_->pg->allreduce(v, ao);
  return [w, where = where()]() { wait(w, "allReduce", where); };
}

std::function<void()> DistGroup::broadcast(at::Tensor t, int src) {
  TORCH_CHECK(src >= 0 && src < opts_.worldSize, "broadcast: src must be in [0, ", opts_.worldSize, "), got ", src);
  checkOpen("broadcast");
  checkTensor(t, "broadcast");
  std::vector<at::Tensor> v{t};
  c10d::BroadcastOptions bo;
  bo.rootRank = src;
  auto w = impl_->pg->broadcast(v, bo);
  return [w, where = where()]() { wait(w, "broadcast", where); };
}

std::function<void()> DistGroup::allGather(const at::Tensor& t, std::shared_ptr<std::vector<at::Tensor>> out) {
  checkOpen("allGather");
  checkTensor(t, "allGather");
  auto lists = std::make_shared<std::vector<std::vector<at::Tensor>>>(1);
  for (int i = 0; i < opts_.worldSize; ++i) (*lists)[0].push_back(at::empty_like(t, t.options(), at::MemoryFormat::Contiguous));
  std::vector<at::Tensor> in{t.contiguous()};
  auto w = impl_->pg->allgather(*lists, in);
  return [w, lists, out, where = where()]() {
    wait(w, "allGather", where);
    *out = (*lists)[0];
  };
}

std::function<void()> DistGroup::barrier() {
  checkOpen("barrier");
  auto w = impl_->pg->barrier();
  return [w, where = where()]() { wait(w, "barrier", where); };
}

}  // namespace ltg
