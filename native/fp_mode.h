// Flush-to-zero / denormals-are-zero, as torch.set_flush_denormal. The CPU keeps this per thread, so a
// process-wide setting is recorded here and applied by each computing thread (the caller, the training
// thread) to itself and to its OpenMP team before it computes.
#pragma once

namespace ltg {
// Records the mode and applies it to the calling thread and its team. False where the CPU lacks DAZ.
bool setFlushDenormal(bool on);
bool flushDenormal();
// Applies the recorded mode to the calling thread and its team if this thread has not yet.
void applyFlushDenormal();
}  // namespace ltg
