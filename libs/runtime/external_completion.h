#pragma once

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "libs/runtime/check.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {

template <typename T>
class ExternalCompletion;

// The producer's end of an ExternalCompletion (folly's Promise from makePromiseContract):
// a small copyable handle that some other thread (a gRPC callback, a writer thread, a
// thread pool) calls exactly once, with the outcome, to resume the awaiting task on
// its own loop. Exactly one copy is called, exactly once; after that call the handle
// and all its copies are dead (the awaiting frame may already be gone). It may also be
// called from the loop's own thread, even from inside `start`.
template <typename T>
class Completer {
 public:
  // Stores value in the awaiting frame and posts the task's resumption to its loop.
  void operator()(T value) const {
    ExternalCompletion<T>* target = target_;
    target->value_.emplace(std::move(value));
    target->Resume();
  }

 private:
  friend class ExternalCompletion<T>;
  explicit Completer(ExternalCompletion<T>* target) : target_(target) {}
  ExternalCompletion<T>* target_;
};

template <>
class Completer<void> {
 public:
  inline void operator()() const;

 private:
  friend class ExternalCompletion<void>;
  explicit Completer(ExternalCompletion<void>* target) : target_(target) {}
  ExternalCompletion<void>* target_;
};

// Awaits work that completes on another thread: the one public way to resume a task
// from outside its loop (the model is folly's makePromiseContract). `start` runs on the
// loop thread as the task suspends and is given a Completer; whoever holds it calls it
// once with the result, from any thread, and the task resumes on its own loop with
// that value.
//
// External-work accounting: from `start` until the task resumes, the work counts as
// the loop's external work. While any is in flight the loop's teardown keeps running
// (blocking for posts) instead of destroying the awaiting frame, so the completing
// thread never writes into freed memory, and a manual clock with auto-advance does not
// jump to the next timer. The loop itself must outlive the Completer's call (it waits
// for Post calls in progress when it is destroyed).
//
// Cancellation: without `on_cancel` the wait is not cancellable (a thread cannot be
// interrupted, and the work may use the caller's frame): a cancellation that arrives
// meanwhile is raised at the task's next suspension point. With `on_cancel`, cancelling
// the task calls on_cancel() once on the loop thread (it must ask the work to finish
// early, e.g. grpc::ClientContext::TryCancel, and may run after the work has already
// completed); the task still resumes only when the Completer has been called, and then
// raises CancelledError, dropping the value. Nothing outlives the frame either way.
//
// Only a Task coroutine may await it, once.
//
//   grpc::Status s = co_await ExternalCompletion<grpc::Status>(
//       [&](Completer<grpc::Status> done) {
//         stub->async()->Method(&ctx, &req, &resp, [done](grpc::Status s) { done(std::move(s)); });
//       },
//       [&] { ctx.TryCancel(); });
template <typename T>
class [[nodiscard]] ExternalCompletion final : private internal::SuspendPoint {
 public:
  explicit ExternalCompletion(absl::AnyInvocable<void(Completer<T>)> start,
                              absl::AnyInvocable<void()> on_cancel = nullptr)
      : start_(std::move(start)), on_cancel_(std::move(on_cancel)), cancellable_(on_cancel_ != nullptr) {}
  ExternalCompletion(const ExternalCompletion&) = delete;
  ExternalCompletion& operator=(const ExternalCompletion&) = delete;

  bool await_ready() const noexcept { return false; }

  template <internal::TaskPromise P>
  void await_suspend(std::coroutine_handle<P> h) {
    task_ = h.promise().task;
    handle_ = h;
    EventLoop* loop = task_->loop();
    loop->AddExternalWork();
    bool cancel_now = false;
    if (cancellable_) {
      cancel_now = task_->TakeCancelRequest();
      task_->SuspendAt(this);
    }
    std::exchange(start_, nullptr)(Completer<T>(this));
    // The work may already have completed, but the task resumes only in a later batch
    // of this thread's loop, so this frame is still here.
    if (cancel_now) CancelWait();
  }

  T await_resume() {
    task_->loop()->ReleaseExternalWork();
    if (cancellable_) task_->Resuming();
    if (cancelled_) {
      task_->CancelDelivered();
      throw CancelledError();
    }
    if constexpr (!std::is_void_v<T>) return std::move(*value_);
  }

 private:
  friend class Completer<T>;
  using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  // Any thread, once: hand the task back to its loop. The post publishes value_.
  void Resume() {
    EventLoop* loop = task_->loop();
    loop->Post(handle_);
  }

  void CancelWait() override {
    if (cancelled_) return;
    cancelled_ = true;
    task_->DeliveringCancel();
    on_cancel_();
  }

  absl::AnyInvocable<void(Completer<T>)> start_;
  absl::AnyInvocable<void()> on_cancel_;
  const bool cancellable_;
  internal::TaskState* task_ = nullptr;
  std::coroutine_handle<> handle_;
  bool cancelled_ = false;
  std::optional<Stored> value_;
};

inline void Completer<void>::operator()() const { target_->Resume(); }

}  // namespace cohort::runtime
