#pragma once

#include <exception>

#include "libs/runtime/errors.h"
#include "libs/runtime/internal/completion_tracker.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// asyncio.TaskGroup: owns the tasks it spawns. When a child fails (with anything but
// CancelledError), every other child is cancelled at once and Join() raises that first
// failure after all children have finished. Cancelling Join() cancels every child and
// raises CancelledError once they have unwound. Spawning into a group that is
// shutting down (after a failure) returns a task that is cancelled before it starts.
//
// Structured: join the group before it goes out of scope. If it is destroyed with
// children still running (an exception or a cancellation unwound past Join), it
// cancels them; they unwind on their own. Loop thread only.
//
//   TaskGroup group;
//   group.Spawn(Fetch(a));
//   group.Spawn(Fetch(b));
//   co_await group.Join();
class TaskGroup {
 public:
  TaskGroup() {
    tracker_.OnDone([this](std::size_t i) { OnChildDone(i); });
  }
  ~TaskGroup() { tracker_.CancelPending(); }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  template <typename T>
  TaskHandle<T> Spawn(Task<T> task) {
    TaskHandle<T> handle = runtime::Spawn(std::move(task));
    if (error_) handle.Cancel();
    tracker_.Add(handle.state());
    return handle;
  }

  std::size_t size() const { return tracker_.size(); }

  // Waits for every child; raises the first failure if there was one.
  Task<void> Join() {
    bool cancelled = false;
    while (!tracker_.all_done() && !cancelled) {
      try {
        co_await tracker_.WaitForMore(tracker_.order().size());
      } catch (const CancelledError&) {
        cancelled = true;
      }
    }
    if (cancelled) {
      tracker_.CancelPending();
      co_await internal::AwaitAllUnwound(tracker_);
    }
    if (error_) std::rethrow_exception(error_);  // a child's failure outranks the cancellation
    if (cancelled) throw CancelledError();
  }

  // Cancels every child still running, then Join()s: for helpers whose owner decides
  // when they end (a session's writer and heartbeats). Children that were cancelled do
  // not count as failures; a child that had failed before still raises its error.
  Task<void> CancelAndJoin() {
    tracker_.CancelPending();
    co_await Join();
  }

 private:
  void OnChildDone(std::size_t i) {
    internal::TaskState* child = tracker_.task(i);
    std::exception_ptr e = child->exception();  // also marks it retrieved
    if (e && !child->cancelled() && !error_) {
      error_ = e;
      tracker_.CancelPending();
    }
  }

  internal::CompletionTracker tracker_;
  std::exception_ptr error_;
};

}  // namespace cohort::runtime
