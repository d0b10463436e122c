#pragma once

#include <coroutine>
#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "libs/runtime/event_loop.h"
#include "libs/runtime/intrusive_list.h"

namespace cohort::runtime {

template <typename T>
class Task;

namespace internal {

// Where a suspended task waits. Task cancellation calls CancelWait() on the point the
// task is suspended at; the point decides what cancelling means (usually: stop
// waiting and resume the task so it raises CancelledError).
class SuspendPoint {
 public:
  virtual void CancelWait() = 0;

 protected:
  ~SuspendPoint() = default;
};

// Notified (on the loop thread) when a task finishes. Owned by the watcher; unlinks
// itself when destroyed.
class DoneNode : public ListNode {
 public:
  virtual void OnTaskDone() = 0;

 protected:
  ~DoneNode() = default;
};

// The shared state of a spawned (root) task: its frame until it finishes, then its
// outcome. Reference-counted by the loop while the task runs and by every TaskHandle.
// Loop thread only.
class TaskState : public ListNode {
 public:
  explicit TaskState(EventLoop* loop) : loop_(loop) {}
  virtual ~TaskState();

  void Ref() { ++refs_; }
  void Unref() {
    if (--refs_ == 0) delete this;
  }

  EventLoop* loop() const { return loop_; }
  bool done() const { return done_; }
  bool cancelled() const { return cancelled_; }
  // The exception the task ended with (CancelledError if cancelled), or null.
  std::exception_ptr exception() {
    exception_retrieved_ = true;
    return exception_;
  }

  // asyncio's Task.cancel(): false if the task is already done. Otherwise the task's
  // current suspension point raises CancelledError, or, if the task is not suspended
  // at a cancellable point, its next suspension point does. A task cancelled before
  // it starts never runs. Cancelling again while a CancelledError is on its way to
  // the task adds nothing (one error is raised, as asyncio merges them).
  bool Cancel();
  // True if a cancellation was requested but the task finished before any suspension
  // point raised it.
  bool cancel_dropped() const { return cancel_dropped_; }

  // ---- The suspension protocol, for awaiters --------------------------------------
  // Consumes a pending cancellation; the awaiter must then raise CancelledError
  // instead of suspending.
  bool TakeCancelRequest() { return std::exchange(cancel_requested_, false); }
  void SuspendAt(SuspendPoint* point) { suspended_at_ = point; }
  // Called when the suspension point is about to resume the task normally: a
  // cancellation from now on is delivered at the next suspension point.
  void Resuming() { suspended_at_ = nullptr; }
  // A suspension point is resuming the task to raise CancelledError; CancelDelivered()
  // when it raises it.
  void DeliveringCancel() { cancel_delivering_ = true; }
  void CancelDelivered() { cancel_delivering_ = false; }

  // Registers node to be notified when the task finishes. The task must not be done.
  void AddDoneNode(DoneNode* node);

  // Called from the root coroutine's final suspend; implemented by TypedTaskState<T>.
  virtual void OnRootFinal() = 0;
  // Destroys the frame of a task that will never finish (loop teardown).
  void Abandon();

 protected:
  // Takes ownership of the root frame, registers the task with its loop and schedules
  // its first step.
  void Start(std::coroutine_handle<> frame);
  std::coroutine_handle<> frame() const { return frame_; }
  void DestroyFrame() { std::exchange(frame_, {}).destroy(); }
  // Records the outcome (frame already destroyed) and notifies the watchers.
  void Finish(std::exception_ptr error);

 private:
  static void FirstStep(void* self);

  EventLoop* const loop_;
  std::coroutine_handle<> frame_;
  int refs_ = 0;
  bool done_ = false;
  bool cancelled_ = false;
  bool cancel_requested_ = false;
  bool cancel_delivering_ = false;
  bool cancel_dropped_ = false;
  bool abandoning_ = false;
  bool exception_retrieved_ = false;
  SuspendPoint* suspended_at_ = nullptr;
  std::exception_ptr exception_;
  IntrusiveList<DoneNode> done_nodes_;
};

// The part of every Task promise that is independent of T.
struct PromiseBase {
  TaskState* task = nullptr;              // the root task this coroutine runs in
  std::coroutine_handle<> continuation;  // the awaiting coroutine; null at the root

  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <typename P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      PromiseBase& p = h.promise();
      if (p.continuation) return p.continuation;  // symmetric transfer: no stack growth
      p.task->OnRootFinal();                     // may destroy h
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
};

// Awaiters find their task through the awaiting coroutine's promise: only Task
// coroutines may await runtime primitives.
template <typename P>
concept TaskPromise = std::is_base_of_v<PromiseBase, P>;

template <typename T>
class Promise final : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <typename U>
  void return_value(U&& value) {
    result_.template emplace<1>(std::forward<U>(value));
  }
  void unhandled_exception() noexcept { result_.template emplace<2>(std::current_exception()); }
  T TakeResult() {
    if (result_.index() == 2) std::rethrow_exception(std::get<2>(result_));
    return std::move(std::get<1>(result_));
  }
  std::exception_ptr exception() const {
    return result_.index() == 2 ? std::get<2>(result_) : nullptr;
  }

 private:
  std::variant<std::monostate, T, std::exception_ptr> result_;
};

template <>
class Promise<void> final : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void unhandled_exception() noexcept { error_ = std::current_exception(); }
  void TakeResult() {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr exception() const { return error_; }

 private:
  std::exception_ptr error_;
};

template <typename T>
class TypedTaskState;

}  // namespace internal

// A lazy coroutine (cppcoro/folly style): nothing runs until it is awaited or spawned.
// `co_await std::move(task)` runs it in the awaiting task (same cancellation scope)
// and transfers control symmetrically, so arbitrarily long chains use no stack.
// Exceptions propagate to the awaiter. A Task is awaited at most once; destroying an
// unstarted Task destroys its frame.
//
//   Task<int> Add(int a, int b) { co_return a + b; }
//   Task<int> Twice() { co_return co_await Add(1, 2) * 2; }
template <typename T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::Promise<T>;
  using value_type = T;

  Task(Task&& other) noexcept : h_(std::exchange(other.h_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, {});
    }
    return *this;
  }
  ~Task() {
    if (h_) h_.destroy();
  }

  bool valid() const { return static_cast<bool>(h_); }

  struct Awaiter {
    std::coroutine_handle<promise_type> h;
    bool await_ready() noexcept { return false; }
    template <internal::TaskPromise P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
      h.promise().task = parent.promise().task;
      h.promise().continuation = parent;
      return h;
    }
    T await_resume() { return h.promise().TakeResult(); }
  };
  Awaiter operator co_await() && noexcept { return Awaiter{h_}; }

 private:
  friend promise_type;
  friend class internal::TypedTaskState<T>;
  explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
  std::coroutine_handle<promise_type> release() { return std::exchange(h_, {}); }

  std::coroutine_handle<promise_type> h_;
};

namespace internal {

template <typename T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

}  // namespace internal
}  // namespace cohort::runtime
