#include "train_thread.h"

#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace ltg {

namespace {

// Shared by the handle and the thread, so it outlives whichever goes last (the thread, at exit).
struct Queue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::packaged_task<void()>> tasks;
  bool longTask = false;  // an epoch is queued or running
};

class TrainThread {
 public:
  TrainThread() : q_(std::make_shared<Queue>()) {
    std::thread([q = q_] {
      for (;;) {
        std::packaged_task<void()> task;
        {
          std::unique_lock<std::mutex> lock(q->mu);
          q->cv.wait(lock, [&] { return !q->tasks.empty(); });
          task = std::move(q->tasks.front());
          q->tasks.pop_front();
        }
        task();
      }
    }).detach();  // never joined: process exit must not wait for an epoch in flight
  }
  // Never woken to end: at process exit its thread-local LibTorch state would be torn down while exit()
  // destroys LibTorch's static objects. It sleeps until the process is gone.

  bool run(const std::function<void()>& fn) {
    std::packaged_task<void()> task(fn);
    auto done = task.get_future();
    {
      std::lock_guard<std::mutex> lock(q_->mu);
      if (q_->longTask) return false;
      q_->tasks.push_back(std::move(task));
    }
    q_->cv.notify_one();
    done.get();  // rethrows the task's exception here
    return true;
  }

  bool start(std::function<void()> fn, std::function<void()> after) {
    {
      std::lock_guard<std::mutex> lock(q_->mu);
      if (q_->longTask) return false;
      q_->longTask = true;
      q_->tasks.emplace_back([q = q_, fn = std::move(fn), after = std::move(after)] {
        {
          // The thread is free again however fn ends.
          struct Release {
            Queue& q;
            ~Release() {
              std::lock_guard<std::mutex> lock(q.mu);
              q.longTask = false;
            }
          } release{*q};
          fn();
        }
        after();
      });
    }
    q_->cv.notify_one();
    return true;
  }

 private:
  std::shared_ptr<Queue> q_;
};

TrainThread& trainThread() {
  static TrainThread thread;
  return thread;
}

}  // namespace

bool runOnTrainThread(const std::function<void()>& fn) { return trainThread().run(fn); }

bool startOnTrainThread(std::function<void()> fn, std::function<void()> after) {
  return trainThread().start(std::move(fn), std::move(after));
}

}  // namespace ltg
