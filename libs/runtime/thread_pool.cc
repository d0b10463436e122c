#include "libs/runtime/thread_pool.h"

#include <algorithm>

#include "libs/runtime/check.h"

namespace cohort::runtime {

ThreadPool::ThreadPool(int threads) {
  COHORT_CHECK(threads > 0, "ThreadPool needs at least one thread");
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

ThreadPool& ThreadPool::Default() {
  // Never destroyed: work may still be running at exit.
  static ThreadPool* pool =
      new ThreadPool(std::max(2, static_cast<int>(std::thread::hardware_concurrency())));
  return *pool;
}

void ThreadPool::Submit(absl::AnyInvocable<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    COHORT_CHECK(!stopping_, "ThreadPool::Submit after shutdown began");
    work_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void ThreadPool::WorkerLoop() {
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !work_.empty(); });
      if (work_.empty()) return;  // stopping, and all submitted work is done
      fn = std::move(work_.front());
      work_.pop_front();
    }
    fn();
  }
}

}  // namespace cohort::runtime
