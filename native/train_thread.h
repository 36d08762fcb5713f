// One persistent thread for all native training work of the process. OpenMP (LibTorch's intra-op
// backend) keeps a thread team per thread that runs parallel work; epochs on ever-changing libuv pool
// threads would pile up teams until libgomp stops spin-waiting (measured: 21 -> 31 ms/step). Running
// every epoch here keeps one team.
//
// An epoch holds the thread for seconds to minutes, so while one is queued or running the thread takes
// no other work: a synchronous step would block its caller's event loop until the epoch ended.
#pragma once
#include <functional>

namespace ltg {
// Runs fn on the training thread and waits for it; exceptions are rethrown in the caller. False, with
// fn not run, while an epoch holds the thread.
bool runOnTrainThread(const std::function<void()>& fn);
// Queues a long task (an epoch) and returns at once; false, with nothing queued, while another holds the
// thread. Neither function may throw. `after` runs on the training thread once it is free again, so that
// whoever it wakes (the epoch's promise) finds the thread free. Process exit does not wait for them.
bool startOnTrainThread(std::function<void()> fn, std::function<void()> after);
}  // namespace ltg
