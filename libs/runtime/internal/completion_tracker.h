#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/internal/waiter.h"
#include "libs/runtime/task.h"

namespace cohort::runtime::internal {

// Watches a growing set of tasks, keeps them alive, and records the order in which
// they finish; a coroutine waits for the next completion with WaitForMore(). The
// building block of Gather, Wait, WaitFor, AsCompleted and TaskGroup. Loop thread only.
class CompletionTracker {
 public:
  CompletionTracker() = default;
  CompletionTracker(const CompletionTracker&) = delete;
  CompletionTracker& operator=(const CompletionTracker&) = delete;

  // Called (on the loop thread) with the index of each task as it finishes, before
  // waiters are woken. Tasks finished at Add() are reported at once.
  void OnDone(absl::AnyInvocable<void(std::size_t)> fn) { on_done_ = std::move(fn); }

  // Tracks `task` as index size(); a finished task is recorded as done at once.
  void Add(TaskState* task) {
    Node& node = nodes_.emplace_back(this, task, nodes_.size());
    if (task->done()) {
      node.OnTaskDone();
    } else {
      task->AddDoneNode(&node);
    }
  }

  std::size_t size() const { return nodes_.size(); }
  bool all_done() const { return order_.size() == nodes_.size(); }
  TaskState* task(std::size_t i) const { return nodes_[i].task; }
  // Indices of finished tasks, in completion order.
  const std::vector<std::size_t>& order() const { return order_; }

  // `bool more = co_await t.WaitForMore(seen, deadline)`: true once more than `seen`
  // tasks have finished, false if the deadline passes first. Cancellable.
  auto WaitForMore(std::size_t seen, std::optional<TimePoint> deadline = std::nullopt) {
    return Awaiter(this, seen, deadline);
  }

  // Cancels every task that has not finished. Returns how many were cancelled.
  std::size_t CancelPending() {
    std::size_t n = 0;
    for (Node& node : nodes_) n += node.task->Cancel() ? 1 : 0;
    return n;
  }

 private:
  struct Node final : DoneNode {
    Node(CompletionTracker* t, TaskState* s, std::size_t i) : tracker(t), task(s), index(i) {
      task->Ref();
    }
    ~Node() { task->Unref(); }
    void OnTaskDone() override {
      tracker->order_.push_back(index);
      if (tracker->on_done_) tracker->on_done_(index);
      while (Waiter* w = tracker->waiters_.PopFront()) w->Wake();
    }
    CompletionTracker* tracker;
    TaskState* task;
    std::size_t index;
  };

  struct Awaiter {
    CompletionTracker* tracker;
    std::size_t seen;
    std::optional<TimePoint> deadline;
    Waiter waiter;
    Awaiter(CompletionTracker* t, std::size_t s, std::optional<TimePoint> d)
        : tracker(t), seen(s), deadline(d) {}
    bool await_ready() const noexcept { return tracker->order_.size() > seen; }
    template <TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, tracker->waiters_, deadline);
    }
    bool await_resume() const {
      waiter.ThrowIfCancelled();
      return tracker->order_.size() > seen;
    }
  };

  std::deque<Node> nodes_;  // a deque: nodes never move
  std::vector<std::size_t> order_;
  IntrusiveList<Waiter> waiters_;
  absl::AnyInvocable<void(std::size_t)> on_done_;
};

// Waits, ignoring cancellation, until every tracked task has finished (the unwinding
// half of cancel-then-wait). Returns true if the awaiting task was cancelled meanwhile,
// so the caller can raise CancelledError afterwards.
inline Task<bool> AwaitAllUnwound(CompletionTracker& tracker) {
  bool cancelled = false;
  while (!tracker.all_done()) {
    try {
      co_await tracker.WaitForMore(tracker.order().size());
    } catch (const CancelledError&) {
      cancelled = true;
    }
  }
  co_return cancelled;
}

}  // namespace cohort::runtime::internal
