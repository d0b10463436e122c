#pragma once

#include <coroutine>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/runtime/check.h"
#include "libs/runtime/internal/waiter.h"

namespace cohort::runtime {

// asyncio.Semaphore: a counter of permits. Acquire() takes one, waiting while none is
// free; Release() hands a permit to the longest waiter or returns it to the pool. Fair
// (FIFO), so a waiting task is never overtaken. At most `value` tasks hold permits at
// once. Cancellation follows Lock: a task cancelled while waiting holds nothing.
// Loop thread only.
class Semaphore {
 public:
  explicit Semaphore(int value) : value_(value) {
    COHORT_CHECK(value >= 0, "Semaphore value must be >= 0");
  }

  // True when Acquire() would suspend.
  bool Locked() const { return value_ == 0 || !waiters_.empty(); }
  int value() const { return value_; }

  // `co_await sem.Acquire()`. Cancellable while waiting.
  auto Acquire() { return Awaiter(this); }
  void Release() {
    if (internal::Waiter* w = waiters_.PopFront()) {
      w->Wake();  // the permit passes directly to the waiter
    } else {
      ++value_;
    }
  }

 private:
  struct Awaiter {
    Semaphore* sem;
    internal::Waiter waiter;
    explicit Awaiter(Semaphore* s) : sem(s) {}
    bool await_ready() noexcept {
      if (sem->Locked()) return false;
      --sem->value_;
      return true;
    }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, sem->waiters_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };

  int value_;
  IntrusiveList<internal::Waiter> waiters_;
};

// asyncio.BoundedSemaphore: a Semaphore whose Release() fails when it would raise the
// count above its initial value (a release without a matching acquire), changing
// nothing.
class BoundedSemaphore {
 public:
  explicit BoundedSemaphore(int value) : sem_(value), bound_(value) {}

  bool Locked() const { return sem_.Locked(); }
  int value() const { return sem_.value(); }
  auto Acquire() { return sem_.Acquire(); }
  [[nodiscard]] absl::Status Release() {
    if (sem_.value() >= bound_) {
      return absl::FailedPreconditionError(
          absl::StrCat("BoundedSemaphore released too many times (bound ", bound_, ")"));
    }
    sem_.Release();
    return absl::OkStatus();
  }

 private:
  Semaphore sem_;
  const int bound_;
};

}  // namespace cohort::runtime
