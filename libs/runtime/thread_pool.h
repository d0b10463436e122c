#pragma once

#include <condition_variable>
#include <coroutine>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {

// A fixed set of threads for blocking work (RocksDB syncs, process spawning, file
// I/O), fed from one FIFO queue. Submit() is thread-safe. Destruction finishes the
// work already submitted, then joins the threads.
class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // A process-wide pool of max(2, hardware threads) threads, created on first use.
  static ThreadPool& Default();

  void Submit(absl::AnyInvocable<void()> fn);
  int size() const { return static_cast<int>(threads_.size()); }

 private:
  void WorkerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void()>> work_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

namespace internal {

template <typename R>
class ToThreadAwaiter {
 public:
  ToThreadAwaiter(ThreadPool* pool, absl::AnyInvocable<R()> fn) : pool_(pool), fn_(std::move(fn)) {}

  bool await_ready() const noexcept { return false; }
  template <TaskPromise P>
  void await_suspend(std::coroutine_handle<P> h) {
    loop_ = h.promise().task->loop();
    loop_->AddExternalWork();
    pool_->Submit([this, h] {
      try {
        if constexpr (std::is_void_v<R>) {
          fn_();
          outcome_.template emplace<1>();
        } else {
          outcome_.template emplace<1>(fn_());
        }
      } catch (...) {
        outcome_.template emplace<2>(std::current_exception());
      }
      loop_->Post(std::coroutine_handle<>(h));  // the ring's release/acquire publishes outcome_
    });
  }
  R await_resume() {
    loop_->ReleaseExternalWork();
    if (outcome_.index() == 2) std::rethrow_exception(std::get<2>(outcome_));
    if constexpr (!std::is_void_v<R>) return std::move(std::get<1>(outcome_));
  }

 private:
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  ThreadPool* pool_;
  absl::AnyInvocable<R()> fn_;
  EventLoop* loop_ = nullptr;
  std::variant<std::monostate, Value, std::exception_ptr> outcome_;
};

}  // namespace internal

// asyncio.to_thread: runs fn() on `pool` and resumes the awaiting task on its own
// loop with fn's result, or rethrows fn's exception there. Not cancellable while fn
// runs (a thread cannot be interrupted, and fn may use the caller's frame): a
// cancellation that arrives meanwhile is raised at the task's next suspension point.
//
//   std::string data = co_await ToThread([&] { return ReadFile(path); });
template <typename Fn>
auto ToThread(ThreadPool& pool, Fn fn) {
  using R = std::invoke_result_t<Fn&>;
  return internal::ToThreadAwaiter<R>(&pool, absl::AnyInvocable<R()>(std::move(fn)));
}

template <typename Fn>
auto ToThread(Fn fn) {
  return ToThread(ThreadPool::Default(), std::move(fn));
}

}  // namespace cohort::runtime
