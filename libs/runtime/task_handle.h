#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/check.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {
namespace internal {

template <typename T>
struct Stored {
  using type = T;
};
template <>
struct Stored<void> {
  using type = std::monostate;
};

// A root task whose outcome has type T.
template <typename T>
class TypedTaskState final : public TaskState {
 public:
  TypedTaskState(EventLoop* loop, Task<T> task) : TaskState(loop) {
    std::coroutine_handle<Promise<T>> frame = task.release();
    frame.promise().task = this;
    Start(frame);
  }

  void OnRootFinal() override {
    Promise<T>& promise = std::coroutine_handle<Promise<T>>::from_address(frame().address()).promise();
    std::exception_ptr error = promise.exception();
    if (!error) {
      if constexpr (!std::is_void_v<T>) value_.emplace(promise.TakeResult());
    }
    DestroyFrame();  // releases everything the frame held, now
    Finish(std::move(error));
  }

  // The value of a task that succeeded.
  typename Stored<T>::type& value() { return *value_; }

 private:
  std::optional<typename Stored<T>::type> value_;
};

// Awaits a task's completion; see TaskHandle::operator co_await.
class AwaitDone : public DoneNode, public SuspendPoint {
 public:
  AwaitDone(TaskState* target, bool propagate_cancel)
      : target_(target), propagate_cancel_(propagate_cancel) {}

  bool await_ready() const noexcept { return target_->done(); }
  template <TaskPromise P>
  bool await_suspend(std::coroutine_handle<P> h) {
    self_ = h.promise().task;
    handle_ = h;
    if (self_->TakeCancelRequest()) {
      if (!propagate_cancel_) {
        cancelled_ = true;
        return false;
      }
      forwarded_ = true;
      target_->Cancel();
    }
    target_->AddDoneNode(this);
    self_->SuspendAt(this);
    return true;
  }
  // Throws CancelledError if this waiter was cancelled: directly (no propagation),
  // or through the target when the target finished without ever raising the
  // cancellation passed on to it (which would otherwise be lost).
  void await_resume() const {
    if (cancelled_ || (forwarded_ && target_->cancel_dropped())) {
      if (self_ != nullptr) self_->CancelDelivered();
      throw CancelledError();
    }
  }

  void OnTaskDone() override {
    self_->Resuming();
    self_->loop()->Schedule(handle_);
  }
  void CancelWait() override {
    if (propagate_cancel_) {
      forwarded_ = true;
      target_->Cancel();  // we resume when the target has unwound
      return;
    }
    Unlink();
    cancelled_ = true;
    self_->Resuming();
    self_->DeliveringCancel();
    self_->loop()->Schedule(handle_);
  }

 private:
  TaskState* const target_;
  const bool propagate_cancel_;
  TaskState* self_ = nullptr;
  std::coroutine_handle<> handle_;
  bool cancelled_ = false;
  bool forwarded_ = false;
};

}  // namespace internal

// A reference to a spawned task (asyncio's Task object). Copyable; the task runs to
// completion whether or not a handle is kept. Loop thread only.
template <typename T = void>
class TaskHandle {
 public:
  using value_type = T;

  TaskHandle() = default;
  explicit TaskHandle(internal::TypedTaskState<T>* state) : state_(state) { state_->Ref(); }
  TaskHandle(const TaskHandle& other) : state_(other.state_) {
    if (state_) state_->Ref();
  }
  TaskHandle(TaskHandle&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  TaskHandle& operator=(TaskHandle other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~TaskHandle() {
    if (state_) state_->Unref();
  }

  bool valid() const { return state_ != nullptr; }
  bool Done() const { return state_->done(); }
  // True if the task finished by raising CancelledError.
  bool Cancelled() const { return state_->cancelled(); }
  // See internal::TaskState::Cancel: false if already done.
  bool Cancel() const { return state_->Cancel(); }
  // The exception the task finished with, or null. Requires Done().
  std::exception_ptr Exception() const {
    COHORT_CHECK(Done(), "Exception() on a task that is not done");
    return state_->exception();
  }
  // The task's value, or rethrows its exception. Requires Done().
  decltype(auto) Result() const {
    COHORT_CHECK(Done(), "Result() on a task that is not done");
    if (std::exception_ptr e = state_->exception()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return static_cast<const T&>(state_->value());
  }
  // Moves the value out (for move-only T). Requires Done().
  T TakeResult() const {
    COHORT_CHECK(Done(), "TakeResult() on a task that is not done");
    if (std::exception_ptr e = state_->exception()) std::rethrow_exception(e);
    if constexpr (!std::is_void_v<T>) return std::move(state_->value());
  }

  // `co_await handle` waits for the task and returns its result (a copy, or the moved
  // value for move-only T). As in asyncio, cancelling the awaiting task cancels this
  // task too, and the awaiter resumes once it has unwound; use Shield() to prevent that.
  auto operator co_await() const {
    struct Awaiter : internal::AwaitDone {
      TaskHandle handle;
      explicit Awaiter(const TaskHandle& h) : AwaitDone(h.state_, true), handle(h) {}
      T await_resume() const {
        AwaitDone::await_resume();
        if constexpr (std::is_copy_constructible_v<T> || std::is_void_v<T>) {
          return handle.Result();
        } else {
          return handle.TakeResult();
        }
      }
    };
    return Awaiter(*this);
  }

  internal::TaskState* state() const { return state_; }

 private:
  internal::TypedTaskState<T>* state_ = nullptr;
};

// Schedules task to start on `loop` in its next iteration (asyncio's create_task) and
// returns its handle. Loop thread only.
template <typename T>
TaskHandle<T> Spawn(EventLoop& loop, Task<T> task) {
  loop.CheckInLoopThread();
  COHORT_CHECK(task.valid(), "Spawn of an empty Task");
  return TaskHandle<T>(new internal::TypedTaskState<T>(&loop, std::move(task)));
}

// Spawns on the loop running on this thread.
template <typename T>
TaskHandle<T> Spawn(Task<T> task) {
  EventLoop* loop = EventLoop::Current();
  COHORT_CHECK(loop != nullptr, "Spawn outside a running event loop");
  return Spawn(*loop, std::move(task));
}

// Runs the loop until task finishes and returns its result or rethrows its exception
// (asyncio's run_until_complete). Other tasks stay where they are.
template <typename T>
T RunUntilComplete(EventLoop& loop, Task<T> task) {
  TaskHandle<T> handle = Spawn(loop, std::move(task));
  loop.RunUntil([&] { return handle.Done(); });
  return handle.TakeResult();
}

}  // namespace cohort::runtime
