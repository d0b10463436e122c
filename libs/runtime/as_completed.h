#pragma once

#include <optional>
#include <vector>

#include "libs/runtime/clock.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/check.h"
#include "libs/runtime/internal/completion_tracker.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// asyncio.as_completed: hands back tasks in the order they finish, earliest first;
// tasks already finished when it is created come first, in the order given.
// Never cancels a task. Loop thread only; must outlive its Next() calls.
//
//   AsCompleted<int> it(handles, std::chrono::seconds(5));
//   while (it.HasNext()) {
//     TaskHandle<int> h = co_await it.Next();  // TimeoutError past the deadline
//   }
template <typename T>
class AsCompleted {
 public:
  explicit AsCompleted(std::vector<TaskHandle<T>> handles, std::optional<Duration> timeout = std::nullopt)
      : handles_(std::move(handles)) {
    for (const TaskHandle<T>& h : handles_) tracker_.Add(h.state());
    if (timeout) deadline_ = EventLoop::Current()->Now() + *timeout;
  }

  bool HasNext() const { return returned_ < handles_.size(); }

  // The next task to finish. Raises TimeoutError once the timeout has passed (the
  // remaining tasks keep running), CancelledError if the caller is cancelled.
  Task<TaskHandle<T>> Next() {
    COHORT_CHECK(HasNext(), "AsCompleted::Next past the last task");
    bool finished = co_await tracker_.WaitForMore(returned_, deadline_);
    if (!finished) throw TimeoutError();
    co_return handles_[tracker_.order()[returned_++]];
  }

 private:
  std::vector<TaskHandle<T>> handles_;
  internal::CompletionTracker tracker_;
  std::optional<TimePoint> deadline_;
  std::size_t returned_ = 0;
};

}  // namespace cohort::runtime
