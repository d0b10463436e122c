#pragma once

#include "libs/runtime/clock.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/internal/completion_tracker.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// asyncio.wait_for: the task's result if it finishes within `timeout`. On timeout the
// task is cancelled, WaitFor waits for it to finish unwinding (it never abandons a
// running task), and then raises TimeoutError; if the task swallowed the cancellation
// and returned a value, that value is returned. Cancelling the WaitFor cancels the
// task likewise and raises CancelledError once it has unwound. Wrap the task in
// Shield() to keep it running after a timeout.
template <typename T>
Task<T> WaitFor(TaskHandle<T> handle, Duration timeout) {
  internal::CompletionTracker tracker;
  tracker.Add(handle.state());
  bool cancelled = false;
  bool finished = false;
  try {
    finished = co_await tracker.WaitForMore(0, EventLoop::Current()->Now() + timeout);
  } catch (const CancelledError&) {
    cancelled = true;
  }
  if (!finished) {
    handle.Cancel();
    bool cancelled_while_unwinding = co_await internal::AwaitAllUnwound(tracker);
    cancelled = cancelled || cancelled_while_unwinding;
    if (cancelled) throw CancelledError();
    if (handle.Cancelled()) throw TimeoutError();
  }
  co_return co_await handle;  // done: no suspension
}

// Spawns task (when the WaitFor starts) and waits for it as above.
template <typename T>
Task<T> WaitFor(Task<T> task, Duration timeout) {
  co_return co_await WaitFor(Spawn(std::move(task)), timeout);
}

}  // namespace cohort::runtime
