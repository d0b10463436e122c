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
#include "libs/runtime/external_completion.h"
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

// What ToThread's function produced: its value or its exception.
template <typename R>
using ToThreadOutcome =
    std::variant<std::conditional_t<std::is_void_v<R>, std::monostate, R>, std::exception_ptr>;

template <typename R>
Task<R> ToThreadTask(ThreadPool* pool, absl::AnyInvocable<R()> fn) {
  ToThreadOutcome<R> outcome = co_await ExternalCompletion<ToThreadOutcome<R>>(
      [pool, &fn](Completer<ToThreadOutcome<R>> done) {
        pool->Submit([&fn, done] {
          std::exception_ptr error;
          try {
            if constexpr (std::is_void_v<R>) {
              fn();
              done(ToThreadOutcome<R>(std::in_place_index<0>));
            } else {
              done(ToThreadOutcome<R>(std::in_place_index<0>, fn()));
            }
            return;
          } catch (...) {
            error = std::current_exception();
          }
          // Handed over once the catch has ended: this thread then holds no reference
          // to the exception, which the awaiting loop alone releases.
          done(ToThreadOutcome<R>(std::in_place_index<1>, std::move(error)));
        });
      });
  if (outcome.index() == 1) std::rethrow_exception(std::get<1>(outcome));
  if constexpr (!std::is_void_v<R>) co_return std::move(std::get<0>(outcome));
}

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
  return internal::ToThreadTask<R>(&pool, absl::AnyInvocable<R()>(std::move(fn)));
}

template <typename Fn>
auto ToThread(Fn fn) {
  return ToThread(ThreadPool::Default(), std::move(fn));
}

}  // namespace cohort::runtime
