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
  bool stop = false;
};

class TrainThread {
 public:
  TrainThread() : q_(std::make_shared<Queue>()) {
    std::thread([q = q_] {
      for (;;) {
        std::packaged_task<void()> task;
        {
          std::unique_lock<std::mutex> lock(q->mu);
          q->cv.wait(lock, [&] { return q->stop || !q->tasks.empty(); });
          if (q->stop) return;
          task = std::move(q->tasks.front());
          q->tasks.pop_front();
        }
        task();
      }
    }).detach();  // never joined: process exit must not wait for an epoch in flight
  }
  ~TrainThread() {
    {
      std::lock_guard<std::mutex> lock(q_->mu);
      q_->stop = true;
    }
    q_->cv.notify_all();
  }

  void run(const std::function<void()>& fn) {
    std::packaged_task<void()> task(fn);
    auto done = task.get_future();
    {
      std::lock_guard<std::mutex> lock(q_->mu);
      q_->tasks.push_back(std::move(task));
    }
    q_->cv.notify_one();
    done.get();  // rethrows the task's exception here
  }

 private:
  std::shared_ptr<Queue> q_;
};

}  // namespace

void runOnTrainThread(const std::function<void()>& fn) {
  static TrainThread thread;
  thread.run(fn);
}

}  // namespace ltg
