#pragma once

#include <coroutine>
#include <utility>

#include "libs/runtime/check.h"
#include "libs/runtime/internal/waiter.h"

namespace cohort::runtime {

class Lock;

// Releases a held Lock when destroyed. Move-only.
class [[nodiscard]] LockGuard {
 public:
  explicit LockGuard(Lock* lock) : lock_(lock) {}
  LockGuard(LockGuard&& other) noexcept : lock_(std::exchange(other.lock_, nullptr)) {}
  LockGuard& operator=(LockGuard&&) = delete;
  ~LockGuard();

 private:
  Lock* lock_;
};

// asyncio.Lock: a non-reentrant mutual-exclusion lock for tasks of one loop. Fair:
// Release() hands the lock to the longest waiter, so no task barges ahead of a
// waiting one. A task cancelled while waiting never holds the lock; a task cancelled
// after the lock was handed to it holds it and sees CancelledError at its next
// suspension point (so RAII releases it). Loop thread only.
//
//   LockGuard guard = co_await lock.Scoped();
class Lock {
 public:
  bool Locked() const { return locked_; }

  // `co_await lock.Acquire()`. Cancellable while waiting.
  auto Acquire() { return Awaiter(this); }
  // `LockGuard g = co_await lock.Scoped()`: acquires, and releases at scope exit.
  auto Scoped() { return GuardAwaiter(this); }
  // Releases the lock; it must be held.
  void Release() {
    COHORT_CHECK(locked_, "Lock::Release of an unlocked lock");
    if (internal::Waiter* w = waiters_.PopFront()) {
      w->Wake();  // ownership passes directly: locked_ stays true
    } else {
      locked_ = false;
    }
  }

 private:
  struct Awaiter {
    Lock* lock;
    internal::Waiter waiter;
    explicit Awaiter(Lock* l) : lock(l) {}
    bool await_ready() noexcept {
      if (lock->locked_) return false;
      lock->locked_ = true;
      return true;
    }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, lock->waiters_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };
  struct GuardAwaiter : Awaiter {
    using Awaiter::Awaiter;
    LockGuard await_resume() const {
      Awaiter::await_resume();
      return LockGuard(lock);
    }
  };

  bool locked_ = false;
  IntrusiveList<internal::Waiter> waiters_;
};

inline LockGuard::~LockGuard() {
  if (lock_) lock_->Release();
}

}  // namespace cohort::runtime
