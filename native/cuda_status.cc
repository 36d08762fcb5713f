#include "cuda_status.h"

#include <ATen/detail/CUDAHooksInterface.h>
#include <dlfcn.h>

#include <exception>

namespace ltg {

namespace {

using InitFn = int (*)(unsigned);
using CountFn = int (*)(int*);

// The driver library, or null (it stays loaded: CUDA itself uses it).
void* driver() {
  static void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  return lib;
}

// Why LibTorch sees no GPU, asked of the driver itself.
std::string noCudaReason() {
  // LTG_CUDA_BUILD: the LibTorch this binary was built against had CUDA.
  if (!LTG_CUDA_BUILD && !at::detail::getCUDAHooks().isBuilt()) return "this LibTorch was built without CUDA";
  void* lib = driver();
  if (!lib) return "no NVIDIA driver was found (libcuda.so.1 could not be loaded)";
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto count = reinterpret_cast<CountFn>(dlsym(lib, "cuDeviceGetCount"));
  if (!init || !count) return "the NVIDIA driver library is incomplete (no cuInit or cuDeviceGetCount)";
  int rc = init(0);
  if (rc != 0) return "the NVIDIA driver failed to initialize (cuInit error " + std::to_string(rc) + ")";
  int n = 0;
  if (count(&n) != 0 || n == 0) return "the NVIDIA driver sees no GPU";
  return "the NVIDIA driver sees " + std::to_string(n) + " GPU(s) but LibTorch cannot use them (is the driver older than " +
         "this LibTorch's CUDA?)";
}

}  // namespace

int cudaDeviceCount() {
  // Fixed for the process's life (LibTorch caches it too); asked once.
  static const int n = [] {
    try {
      return at::detail::getCUDAHooks().hasCUDA() ? int(at::detail::getCUDAHooks().deviceCount()) : 0;
    } catch (const std::exception&) {
      return 0;
    }
  }();
  return n;
}

std::string cudaUnavailableReason() {
  if (cudaDeviceCount() > 0) return "";
  static const std::string why = "CUDA is not available: " + noCudaReason();
  return why;
}

std::string deviceUnusableReason(const c10::Device& device) {
  if (!device.is_cuda()) return "";
  int n = cudaDeviceCount();
  if (n == 0) return cudaUnavailableReason() + "; use device 'cpu'";
  if (device.has_index() && device.index() >= n)
    return "no CUDA device " + device.str() + " (this machine has " + std::to_string(n) + ": cuda:0" +
           (n > 1 ? " to cuda:" + std::to_string(n - 1) : "") + ")";
  return "";
}

std::vector<std::string> cudaDeviceNames(int n) {
  std::vector<std::string> out;
  if (n == 0) return out;
  void* lib = driver();
  if (!lib) return out;
  using GetFn = int (*)(int*, int);
  using NameFn = int (*)(char*, int, int);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<GetFn>(dlsym(lib, "cuDeviceGet"));
  auto name = reinterpret_cast<NameFn>(dlsym(lib, "cuDeviceGetName"));
  if (init && get && name && init(0) == 0) {
    for (int i = 0; i < n; ++i) {
      int dev = 0;
      char buf[256] = {0};
      if (get(&dev, i) == 0 && name(buf, sizeof buf, dev) == 0) out.emplace_back(buf);
    }
  }
  return out;
}

int cudaComputeCapabilityMajor(int index) {
  void* lib = driver();
  if (!lib || index < 0 || index >= cudaDeviceCount()) return 0;
  using GetFn = int (*)(int*, int);
  using AttrFn = int (*)(int*, int, int);
  auto init = reinterpret_cast<InitFn>(dlsym(lib, "cuInit"));
  auto get = reinterpret_cast<GetFn>(dlsym(lib, "cuDeviceGet"));
  auto attr = reinterpret_cast<AttrFn>(dlsym(lib, "cuDeviceGetAttribute"));
  constexpr int kComputeCapabilityMajor = 75;  // CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR
  int dev = 0, major = 0;
  if (!init || !get || !attr || init(0) != 0 || get(&dev, index) != 0 || attr(&major, kComputeCapabilityMajor, dev) != 0) return 0;
  return major;
}

}  // namespace ltg
