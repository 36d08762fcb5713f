// Whether CUDA can be used here, and if not why, in one place: the device reader (js_args) refuses a CUDA
// device with one message whatever the cause, instead of the driver's different errors per op.
#pragma once
#include <c10/core/Device.h>

#include <string>
#include <vector>

namespace ltg {

int cudaDeviceCount();  // 0 without a driver, a GPU or a CUDA LibTorch
// Empty when `device` can be used; else why not, e.g. "CUDA is not available: no NVIDIA driver was found
// (libcuda.so.1 could not be loaded); use device 'cpu'".
std::string deviceUnusableReason(const c10::Device& device);
// Empty when a GPU is usable; else "CUDA is not available: <the driver's reason>" (what 'auto' reports).
std::string cudaUnavailableReason();
// The GPUs' names through the driver API (loaded at run time: no CUDA headers needed to build).
std::vector<std::string> cudaDeviceNames(int n);
// The compute capability's major version of CUDA device `index` (8 and up: Ampere and later, with bf16
// tensor cores); 0 where it cannot be read.
int cudaComputeCapabilityMajor(int index);

}  // namespace ltg
