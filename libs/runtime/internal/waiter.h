#pragma once

#include <coroutine>
#include <optional>

#include "libs/runtime/clock.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/intrusive_list.h"
#include "libs/runtime/internal/timer_heap.h"
#include "libs/runtime/task.h"

namespace cohort::runtime::internal {

// A coroutine suspended in a primitive's wait list (Event, Lock, Queue, ...),
// optionally with a deadline. Lives in the awaiting coroutine's frame: waiting
// allocates nothing. Exactly one of Wake(), a cancellation or the deadline resumes it;
// the others then do nothing.
class Waiter : public ListNode, public SuspendPoint, private TimerNode {
 public:
  enum class Outcome { kWaiting, kWoken, kCancelled, kTimedOut };

  // Suspends h on list, with an optional deadline. Returns false (do not suspend) if
  // a pending cancellation must be raised at once; await_resume then sees kCancelled.
  template <TaskPromise P>
  bool Suspend(std::coroutine_handle<P> h, IntrusiveList<Waiter>& list,
               std::optional<TimePoint> deadline = std::nullopt) {
    task_ = h.promise().task;
    handle_ = h;
    if (task_->TakeCancelRequest()) {
      outcome_ = Outcome::kCancelled;
      return false;
    }
    list.PushBack(this);
    if (deadline) task_->loop()->ArmTimer(this, *deadline);
    task_->SuspendAt(this);
    return true;
  }

  // Called by the primitive (which has already taken this waiter off its list).
  void Wake() { Resume(Outcome::kWoken); }

  Outcome outcome() const { return outcome_; }
  // Throws CancelledError if the wait was cancelled.
  void ThrowIfCancelled() const {
    if (outcome_ != Outcome::kCancelled) return;
    task_->CancelDelivered();
    throw CancelledError();
  }

  void CancelWait() override { Resume(Outcome::kCancelled); }

 private:
  void OnTimer() override { Resume(Outcome::kTimedOut); }
  void Resume(Outcome outcome) {
    if (outcome_ != Outcome::kWaiting) return;
    outcome_ = outcome;
    Unlink();
    task_->loop()->DisarmTimer(this);
    task_->Resuming();
    if (outcome == Outcome::kCancelled) task_->DeliveringCancel();
    task_->loop()->Schedule(handle_);
  }

  TaskState* task_ = nullptr;
  std::coroutine_handle<> handle_;
  Outcome outcome_ = Outcome::kWaiting;
};

}  // namespace cohort::runtime::internal
