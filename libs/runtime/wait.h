#pragma once

#include <optional>
#include <stdexcept>
#include <vector>

#include "libs/runtime/clock.h"
#include "libs/runtime/internal/completion_tracker.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// When Wait returns (asyncio.FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED).
enum class ReturnWhen { kFirstCompleted, kFirstException, kAllCompleted };

// Wait's answer: the finished and unfinished tasks, each in the order given.
template <typename T>
struct WaitResult {
  std::vector<TaskHandle<T>> done;
  std::vector<TaskHandle<T>> pending;
};

namespace internal {

// True once `when` holds for the tasks seen finished so far. A cancelled task does
// not count as an exception (asyncio).
inline bool WaitSatisfied(const CompletionTracker& tracker, ReturnWhen when) {
  if (tracker.all_done()) return true;
  switch (when) {
    case ReturnWhen::kFirstCompleted:
      return !tracker.order().empty();
    case ReturnWhen::kFirstException:
      for (std::size_t i : tracker.order()) {
        TaskState* task = tracker.task(i);
        if (!task->cancelled() && task->exception()) return true;
      }
      return false;
    case ReturnWhen::kAllCompleted:
      return false;
  }
  return false;
}

}  // namespace internal

// asyncio.wait: waits until `when` holds or `timeout` passes, and returns which tasks
// are done and which are pending. Never cancels a task and never raises a task's
// failure; a timeout is not an error (it returns what is done). Cancelling the wait
// raises CancelledError and leaves the tasks running. Throws std::invalid_argument for
// an empty `handles` (as asyncio raises ValueError).
template <typename T>
Task<WaitResult<T>> Wait(std::vector<TaskHandle<T>> handles, ReturnWhen when = ReturnWhen::kAllCompleted,
                         std::optional<Duration> timeout = std::nullopt) {
  if (handles.empty()) throw std::invalid_argument("Wait() of an empty set of tasks");
  internal::CompletionTracker tracker;
  for (const TaskHandle<T>& h : handles) tracker.Add(h.state());
  std::optional<TimePoint> deadline;
  if (timeout) deadline = EventLoop::Current()->Now() + *timeout;
  while (!internal::WaitSatisfied(tracker, when)) {
    // (Not `if (!co_await ...)`: GCC 12 miscompiles co_await in a condition.)
    bool more = co_await tracker.WaitForMore(tracker.order().size(), deadline);
    if (!more) break;  // timed out
  }
  WaitResult<T> result;
  for (TaskHandle<T>& h : handles) (h.Done() ? result.done : result.pending).push_back(std::move(h));
  co_return result;
}

}  // namespace cohort::runtime
