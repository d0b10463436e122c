#pragma once

#include <coroutine>

#include "libs/runtime/clock.h"
#include "libs/runtime/internal/waiter.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {
namespace internal {

// Resumes the task at `deadline` (a timer in the frame: no allocation), or at once
// through the ready queue when `deadline` is null (a yield).
class SleepAwaiter {
 public:
  explicit SleepAwaiter(std::optional<Duration> delay) : delay_(delay) {}
  bool await_ready() const noexcept { return false; }
  template <TaskPromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    if (!delay_) {
      // A yield: the task is already scheduled; a cancellation meanwhile is raised here.
      task_ = h.promise().task;
      if (task_->TakeCancelRequest()) {
        cancelled_ = true;
        return false;
      }
      yield_point_.task = task_;
      task_->SuspendAt(&yield_point_);
      task_->loop()->Schedule(h);
      return true;
    }
    return waiter_.Suspend(h, unused_list_, h.promise().task->loop()->Now() + *delay_);
  }
  void await_resume() {
    if (!delay_) {
      task_->Resuming();
      if (cancelled_ || yield_point_.cancelled) {
        task_->CancelDelivered();
        throw CancelledError();
      }
      return;
    }
    waiter_.ThrowIfCancelled();
  }

 private:
  struct YieldPoint final : SuspendPoint {
    TaskState* task = nullptr;
    bool cancelled = false;
    void CancelWait() override {
      cancelled = true;
      task->DeliveringCancel();
    }
  };
  std::optional<Duration> delay_;
  TaskState* task_ = nullptr;
  bool cancelled_ = false;
  YieldPoint yield_point_;
  IntrusiveList<Waiter> unused_list_;
  Waiter waiter_;
};

}  // namespace internal

// Suspends the calling task for `delay` (asyncio.sleep). A delay <= 0 yields: the task
// goes to the back of the ready queue, letting every other ready task run first.
// Cancellable: raises CancelledError at this point.
inline internal::SleepAwaiter Sleep(Duration delay) {
  return internal::SleepAwaiter(delay > Duration::zero() ? std::optional<Duration>(delay) : std::nullopt);
}

// Sleep(0): lets every other ready task run, then resumes.
inline internal::SleepAwaiter Yield() { return internal::SleepAwaiter(std::nullopt); }

// Suspends the calling task until `deadline` on the loop's clock.
Task<void> SleepUntil(TimePoint deadline);

}  // namespace cohort::runtime
