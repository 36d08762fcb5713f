#include "epoch_lock.h"

#include <ATen/Context.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#include "cuda_status.h"

namespace ltg {

namespace {

struct Registry {
  std::mutex mu;
  std::unordered_map<const void*, int> count;  // a key may be registered twice (a tensor and its view)
  std::atomic<size_t> locks{0};                // live EpochLocks: lets the common case skip the mutex
};

Registry& registry() {
  static Registry r;
  return r;
}

void keysOf(const at::Tensor& t, std::vector<const void*>& out) {
  if (!t.defined()) return;
  out.push_back(t.unsafeGetTensorImpl());
  if (t.has_storage() && t.storage().unsafeGetStorageImpl()) out.push_back(t.storage().unsafeGetStorageImpl());
}

bool anyRegistered(const std::vector<const void*>& keys) {
  Registry& r = registry();
  if (r.locks.load() == 0) return false;
  std::lock_guard<std::mutex> lock(r.mu);
  for (const void* k : keys)
    if (r.count.count(k)) return true;
  return false;
}

}  // namespace

EpochLock::EpochLock(std::vector<at::Tensor> tensors, std::vector<const void*> objects) : tensors_(std::move(tensors)) {
  for (const auto& t : tensors_) keysOf(t, keys_);
  for (const void* o : objects)
    if (o) keys_.push_back(o);
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const void* k : keys_) ++r.count[k];
  ++r.locks;
}

EpochLock::~EpochLock() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const void* k : keys_) {
    auto it = r.count.find(k);
    if (it != r.count.end() && --it->second == 0) r.count.erase(it);
  }
  --r.locks;
}

bool isLocked(const at::Tensor& t) {
  if (registry().locks.load() == 0) return false;
  std::vector<const void*> keys;
  keysOf(t, keys);
  return anyRegistered(keys);
}

bool isLocked(const void* object) { return object && anyRegistered({object}); }

const void* generatorKey(const c10::Device& device) {
  if (device.is_cuda() && cudaDeviceCount() == 0) return nullptr;  // no generator to lock (nor to draw from)
  return at::globalContext().defaultGenerator(device).unsafeGetGeneratorImpl();
}

bool isGeneratorLocked(const c10::Device& device) {
  // No epoch, no lookup: the common case neither initializes CUDA nor takes the registry's mutex.
  if (registry().locks.load() == 0) return false;
  return isLocked(generatorKey(device));
}

std::string generatorSubject(const c10::Device& device) {
  std::string name = device.is_cuda() && !device.has_index() ? "the current CUDA device" : device.str();
  return "the default random generator of " + name;
}

std::string inUseMessage(const std::string& what, const char* subject) {
  return what + ": " + subject + " is in use by a running trainEpoch (wait for it to finish or abort it)";
}

}  // namespace ltg
