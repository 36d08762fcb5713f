#include "fp_mode.h"

#include <ATen/Parallel.h>

#include <atomic>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define LTG_HAS_MXCSR 1
#endif

namespace ltg {

namespace {
std::atomic<int> mode{0};          // 0 off, 1 on
thread_local int appliedHere = 0;  // what this thread last applied to itself and its team

void setThisThread(bool on) {
#ifdef LTG_HAS_MXCSR
  constexpr unsigned kFtzDaz = 0x8040;  // MXCSR flush-to-zero (bit 15) and denormals-are-zero (bit 6)
  _mm_setcsr(on ? (_mm_getcsr() | kFtzDaz) : (_mm_getcsr() & ~kFtzDaz));
#else
  (void)on;
#endif
}

void applyToTeam(bool on) {
  setThisThread(on);
  // One item per team thread: each OpenMP thread of this thread's team sets its own register.
  int n = at::get_num_threads();
  if (n > 1) at::parallel_for(0, n, 1, [on](int64_t, int64_t) { setThisThread(on); });
}
}  // namespace

bool setFlushDenormal(bool on) {
#ifdef LTG_HAS_MXCSR
  mode = on ? 1 : 0;
  applyToTeam(on);
  appliedHere = mode;
  return true;
#else
  (void)on;
  return false;
#endif
}

bool flushDenormal() { return mode.load() == 1; }

void applyFlushDenormal() {
  int m = mode.load();
  if (m == appliedHere) return;
  applyToTeam(m == 1);
  appliedHere = m;
}

}  // namespace ltg
