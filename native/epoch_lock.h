// The one registry of what running trainEpochs own. While an epoch is in flight its tensors (G's and D's
// parameters and buffers, their gradients, both optimizers' parameters and state, the dataset) and its
// optimizers are locked: every N-API entry point that would read or write one refuses with
//   "<what>: this tensor is in use by a running trainEpoch (wait for it to finish or abort it)"
// rather than race the training thread (heap corruption, torn reads). A tensor counts as locked when it
// is a registered tensor or shares a registered tensor's storage (a view, a detach()). One registry per
// process: the epochs of every environment (Workers too) run on the one training thread.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>
#include <vector>

namespace ltg {

// Registers tensors and objects for its lifetime. It holds references to the tensors, so no registered
// address can be freed and reused by an unrelated tensor while it is registered.
class EpochLock {
 public:
  EpochLock(std::vector<at::Tensor> tensors, std::vector<const void*> objects);
  ~EpochLock();
  EpochLock(const EpochLock&) = delete;
  EpochLock& operator=(const EpochLock&) = delete;

 private:
  std::vector<at::Tensor> tensors_;
  std::vector<const void*> keys_;
};

bool isLocked(const at::Tensor& t);
bool isLocked(const void* object);

// The default random generator of `device` ('cuda' without an index: this thread's current device) as
// an object an epoch locks. An epoch draws its noise, fake labels and dropout masks from its device's
// default generator on the training thread (and a CUDA graph replays those draws through the generator's
// offsets), so a draw from it on another thread meanwhile would change the epoch's random stream by
// timing (on CUDA during a capture, the captured offsets too). Locking it keeps epochs reproducible.
const void* generatorKey(const c10::Device& device);
bool isGeneratorLocked(const c10::Device& device);
// The subject of inUseMessage for that generator, e.g. "the default random generator of cuda:0".
std::string generatorSubject(const c10::Device& device);
// "<what>: <subject> is in use by a running trainEpoch (wait for it to finish or abort it)"
std::string inUseMessage(const std::string& what, const char* subject = "this tensor");

}  // namespace ltg
