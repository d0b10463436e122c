#pragma once

#include <coroutine>
#include <cstddef>
#include <exception>

#include "libs/runtime/errors.h"
#include "libs/runtime/internal/waiter.h"
#include "libs/runtime/intrusive_list.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::runtime {

// asyncio.TaskGroup: owns the tasks it spawns. When a child fails (with anything but
// CancelledError), every other child is cancelled at once and Join() raises that first
// failure after all children have finished. Cancelling Join() cancels every child and
// raises CancelledError once they have unwound. Spawning into a group that is
// shutting down (after a failure) returns a task that is cancelled before it starts.
//
// Memory: the group holds only its running children; each is released as it finishes
// (its outcome stays with any TaskHandle kept by the caller), so a long-lived group
// that spawns without end stays as small as the number running at once.
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
  TaskGroup() = default;
  ~TaskGroup() {
    CancelRunning();
    while (Child* child = static_cast<Child*>(running_.PopFront())) delete child;
  }
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Spawns task on the current loop as a child of this group. O(1).
  template <typename T>
  TaskHandle<T> Spawn(Task<T> task) {
    TaskHandle<T> handle = runtime::Spawn(std::move(task));
    if (error_) handle.Cancel();
    Adopt(handle.state());
    return handle;
  }

  // Children spawned and not yet finished.
  std::size_t running() const { return running_count_; }

  // Waits for every child (including those spawned while it waits); raises the first
  // failure if there was one.
  Task<void> Join() {
    bool cancelled = false;
    while (running_count_ > 0 && !cancelled) {
      try {
        co_await AllDone(this);
      } catch (const CancelledError&) {
        cancelled = true;
      }
    }
    if (cancelled) {
      CancelRunning();
      // The unwinding half of cancel-then-wait: ignore further cancellations.
      while (running_count_ > 0) {
        try {
          co_await AllDone(this);
        } catch (const CancelledError&) {
        }
      }
    }
    if (error_) std::rethrow_exception(error_);  // a child's failure outranks the cancellation
    if (cancelled) throw CancelledError();
  }

  // Cancels every child still running, then Join()s: for helpers whose owner decides
  // when they end (a session's writer and heartbeats). Children that were cancelled do
  // not count as failures; a child that had failed before still raises its error.
  Task<void> CancelAndJoin() {
    CancelRunning();
    co_await Join();
  }

 private:
  // Links a running child into running_; separate from the DoneNode link that the
  // child's task uses to notify it.
  struct GroupLink : ListNode {};

  // One running child: notified when its task finishes, then deleted.
  struct Child final : internal::DoneNode, GroupLink {
    Child(TaskGroup* g, internal::TaskState* t) : group(g), task(t) { task->Ref(); }
    ~Child() { task->Unref(); }
    void OnTaskDone() override { group->OnChildDone(this); }
    TaskGroup* const group;
    internal::TaskState* const task;
  };

  // Waits until no child is running; cancellable.
  struct AllDone {
    explicit AllDone(TaskGroup* g) : group(g) {}
    TaskGroup* group;
    internal::Waiter waiter;
    bool await_ready() const noexcept { return group->running_count_ == 0; }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, group->joiners_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };

  void Adopt(internal::TaskState* task) {
    auto* child = new Child(this, task);
    running_.PushBack(child);
    ++running_count_;
    if (task->done()) {
      OnChildDone(child);
    } else {
      task->AddDoneNode(child);
    }
  }

  void OnChildDone(Child* child) {
    std::exception_ptr e = child->task->exception();  // also marks it retrieved
    if (e && !child->task->cancelled() && !error_) {
      error_ = e;
      CancelRunning();
    }
    delete child;  // unlinks it from running_
    if (--running_count_ == 0) {
      while (internal::Waiter* w = joiners_.PopFront()) w->Wake();
    }
  }

  void CancelRunning() {
    running_.ForEach([](GroupLink* link) { static_cast<Child*>(link)->task->Cancel(); });
  }

  IntrusiveList<GroupLink> running_;
  std::size_t running_count_ = 0;
  IntrusiveList<internal::Waiter> joiners_;
  std::exception_ptr error_;
};

}  // namespace cohort::runtime
