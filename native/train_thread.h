// One persistent thread for all native training work of the process. OpenMP (LibTorch's intra-op
// backend) keeps a thread team per thread that runs parallel work; epochs on ever-changing libuv pool
// threads would pile up teams until libgomp stops spin-waiting (measured: 21 -> 31 ms/step). Running
// every epoch here keeps one team. The libuv worker only waits for the result.
#pragma once
#include <functional>

namespace ltg {
// Runs fn on the training thread and waits for it; exceptions are rethrown in the caller.
void runOnTrainThread(const std::function<void()>& fn);
}  // namespace ltg
