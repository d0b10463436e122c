#pragma once

#include <coroutine>
#include <exception>

#include "libs/runtime/check.h"
#include "libs/runtime/internal/waiter.h"
#include "libs/runtime/lock.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {

// asyncio.Condition: tasks wait, with its lock held, until notified. Wait() releases
// the lock while waiting and always re-acquires it before returning or raising, even
// when cancelled (the caller's RAII release stays correct). Loop thread only.
//
//   LockGuard g = co_await cond.lock().Scoped();
//   co_await cond.WaitFor([&] { return !items.empty(); });
class Condition {
 public:
  // Uses its own lock, or `lock` (which must outlive the condition).
  Condition() : lock_(&own_lock_) {}
  explicit Condition(Lock& lock) : lock_(&lock) {}

  Lock& lock() { return *lock_; }

  // Releases the lock, waits for Notify/NotifyAll, re-acquires the lock. The lock
  // must be held. Cancellable (CancelledError is raised with the lock held again).
  Task<void> Wait();
  // Waits until pred() is true, checking it with the lock held after each wake-up.
  template <typename Pred>
  Task<void> WaitFor(Pred pred) {
    while (!pred()) co_await Wait();
  }
  // Wakes up to n waiting tasks (each re-acquires the lock in turn). The lock must
  // be held.
  void Notify(int n = 1);
  void NotifyAll();

 private:
  struct NotifyAwaiter {
    Condition* cond;
    internal::Waiter waiter;
    bool await_ready() const noexcept { return false; }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, cond->waiters_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };

  Lock own_lock_;
  Lock* lock_;
  IntrusiveList<internal::Waiter> waiters_;
};

inline Task<void> Condition::Wait() {
  COHORT_CHECK(lock_->Locked(), "Condition::Wait without holding the lock");
  lock_->Release();
  std::exception_ptr error;
  bool notified = false;
  try {
    co_await NotifyAwaiter{this, {}};
    notified = true;
  } catch (...) {
    error = std::current_exception();
  }
  // Re-acquire even if cancelled meanwhile: the caller expects the lock held.
  while (true) {
    try {
      co_await lock_->Acquire();
      break;
    } catch (const CancelledError&) {
      if (!error) error = std::current_exception();
    }
  }
  // Leaving with an error after being notified: pass the notification on, or another
  // waiter would sleep through it (CPython gh-112202).
  if (error && notified) Notify(1);
  if (error) std::rethrow_exception(error);
}

inline void Condition::Notify(int n) {
  COHORT_CHECK(lock_->Locked(), "Condition::Notify without holding the lock");
  for (int i = 0; i < n; ++i) {
    internal::Waiter* w = waiters_.PopFront();
    if (w == nullptr) break;
    w->Wake();
  }
}

inline void Condition::NotifyAll() {
  COHORT_CHECK(lock_->Locked(), "Condition::NotifyAll without holding the lock");
  while (internal::Waiter* w = waiters_.PopFront()) w->Wake();
}

}  // namespace cohort::runtime
