#pragma once

#include <exception>
#include <tuple>
#include <type_traits>
#include <vector>

#include "libs/runtime/errors.h"
#include "libs/runtime/internal/completion_tracker.h"
#include "libs/runtime/result.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// Tag for Gather: put each failure in its slot instead of raising it.
struct ReturnExceptionsTag {};
inline constexpr ReturnExceptionsTag kReturnExceptions{};

template <typename T>
using GatherValue = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;

namespace internal {

// Waits for every tracked task. Without return_exceptions, raises the first failure
// (in completion order) as soon as it happens and leaves the others running. If the
// awaiting task is cancelled: cancels every unfinished task, waits for all of them to
// unwind, then raises CancelledError.
inline Task<void> GatherWait(CompletionTracker& tracker, bool return_exceptions) {
  std::size_t seen = 0;
  while (true) {
    for (; seen < tracker.order().size(); ++seen) {
      TaskState* task = tracker.task(tracker.order()[seen]);
      if (!return_exceptions && task->exception()) std::rethrow_exception(task->exception());
    }
    if (tracker.all_done()) co_return;
    bool cancelled = false;
    try {
      co_await tracker.WaitForMore(seen);
    } catch (const CancelledError&) {
      cancelled = true;
    }
    if (cancelled) {
      tracker.CancelPending();
      co_await AwaitAllUnwound(tracker);
      throw CancelledError();
    }
  }
}

template <typename T>
void Track(CompletionTracker& tracker, const std::vector<TaskHandle<T>>& handles) {
  for (const TaskHandle<T>& h : handles) tracker.Add(h.state());
}

template <typename T>
std::vector<TaskHandle<T>> SpawnAll(std::vector<Task<T>> tasks) {
  std::vector<TaskHandle<T>> handles;
  handles.reserve(tasks.size());
  for (Task<T>& t : tasks) handles.push_back(Spawn(std::move(t)));
  return handles;
}

}  // namespace internal

// asyncio.gather over running tasks: their results in the order of `handles` (not of
// completion). The first failure (a cancelled task counts, as CancelledError) is raised
// as soon as it happens; the other tasks keep running. Cancelling the gather cancels
// every unfinished task and raises CancelledError once they have all finished.
// Duplicate handles are allowed; each slot gets the result.
template <typename T>
Task<GatherValue<T>> Gather(std::vector<TaskHandle<T>> handles) {
  internal::CompletionTracker tracker;
  internal::Track(tracker, handles);
  co_await internal::GatherWait(tracker, /*return_exceptions=*/false);
  if constexpr (!std::is_void_v<T>) {
    std::vector<T> values;
    values.reserve(handles.size());
    for (const TaskHandle<T>& h : handles) values.push_back(h.Result());
    co_return values;
  }
}

// Gather with return_exceptions=True: waits for every task and returns each outcome
// (value or exception) in the order of `handles`. Never raises a task's failure.
template <typename T>
Task<std::vector<Result<T>>> Gather(std::vector<TaskHandle<T>> handles, ReturnExceptionsTag) {
  internal::CompletionTracker tracker;
  internal::Track(tracker, handles);
  co_await internal::GatherWait(tracker, /*return_exceptions=*/true);
  std::vector<Result<T>> results;
  results.reserve(handles.size());
  for (const TaskHandle<T>& h : handles) {
    if (std::exception_ptr e = h.Exception()) {
      results.push_back(Result<T>::Error(e));
    } else if constexpr (std::is_void_v<T>) {
      results.push_back(Result<T>::Value());
    } else {
      results.push_back(Result<T>::Value(h.Result()));
    }
  }
  co_return results;
}

// Spawns each task (in order, when the gather starts) and gathers them, as
// asyncio.gather does with coroutines.
template <typename T>
Task<GatherValue<T>> Gather(std::vector<Task<T>> tasks) {
  co_return co_await Gather(internal::SpawnAll(std::move(tasks)));
}
template <typename T>
Task<std::vector<Result<T>>> Gather(std::vector<Task<T>> tasks, ReturnExceptionsTag tag) {
  co_return co_await Gather(internal::SpawnAll(std::move(tasks)), tag);
}

// Gathers tasks of different types into a tuple (void results become std::monostate).
template <typename... Ts>
Task<std::tuple<typename internal::Stored<Ts>::type...>> Gather(Task<Ts>... tasks) {
  // Braced initialisation spawns left to right.
  std::tuple<TaskHandle<Ts>...> handles{Spawn(std::move(tasks))...};
  internal::CompletionTracker tracker;
  std::apply([&](auto&... h) { (tracker.Add(h.state()), ...); }, handles);
  co_await internal::GatherWait(tracker, /*return_exceptions=*/false);
  co_return std::apply(
      [](auto&... h) {
        auto value = [](auto& handle) {
          using V = typename std::remove_cvref_t<decltype(handle)>::value_type;
          if constexpr (std::is_void_v<V>) {
            handle.Result();
            return std::monostate{};
          } else {
            return handle.Result();
          }
        };
        return std::make_tuple(value(h)...);
      },
      handles);
}

}  // namespace cohort::runtime
