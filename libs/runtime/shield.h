#pragma once

#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// asyncio.shield: waits for the task and returns its result, but cancelling the
// awaiting task (or a WaitFor around the Shield) does not cancel the shielded task:
// the waiter raises CancelledError at once and the task runs on, its handle still
// valid for another wait. Cancelling the task itself still cancels it.
template <typename T>
Task<T> Shield(TaskHandle<T> handle) {
  co_await internal::AwaitDone(handle.state(), /*propagate_cancel=*/false);
  co_return co_await handle;  // done: no suspension
}

// Spawns task (when the Shield starts) and shields it. Keep a handle (spawn it
// yourself) to see it finish.
template <typename T>
Task<T> Shield(Task<T> task) {
  co_return co_await Shield(Spawn(std::move(task)));
}

}  // namespace cohort::runtime
