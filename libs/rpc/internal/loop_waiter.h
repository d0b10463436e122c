#pragma once

#include <coroutine>
#include <utility>

#include "libs/runtime/event_loop.h"
#include "libs/runtime/check.h"

namespace cohort::rpc::internal {

// A coroutine taken from a LoopWaiter, to be resumed on its loop by Post() once the
// stream's mutex is released. Posting under that mutex could deadlock: Post() waits
// while the loop's post ring is full, and the loop thread, which alone drains the
// ring, may itself be waiting for the mutex. Dropping a Wakeup without posting it
// would lose the wake-up, so the destructor aborts on one.
class Wakeup {
 public:
  Wakeup() = default;
  Wakeup(std::coroutine_handle<> handle, runtime::EventLoop* loop) : handle_(handle), loop_(loop) {}
  Wakeup(Wakeup&& other) noexcept
      : handle_(std::exchange(other.handle_, {})), loop_(other.loop_) {}
  Wakeup& operator=(Wakeup&& other) noexcept {
    COHORT_CHECK(!handle_, "a wake-up was overwritten before it was posted");
    handle_ = std::exchange(other.handle_, {});
    loop_ = other.loop_;
    return *this;
  }
  ~Wakeup() { COHORT_CHECK(!handle_, "a wake-up was dropped without being posted"); }

  // Resumes the coroutine, if any, on its loop. Call with no lock held.
  void Post() {
    if (handle_) loop_->Post(std::exchange(handle_, {}));
  }

 private:
  std::coroutine_handle<> handle_;
  runtime::EventLoop* loop_ = nullptr;
};

// One loop coroutine suspended until a gRPC callback thread signals it. The owner
// guards it with its own mutex: Park() and TakeLocked() are called with that mutex
// held, so a wake-up between "nothing to do" and "suspend" is never lost; the Wakeup
// that TakeLocked() returns is posted after the mutex is released (see Wakeup).
class LoopWaiter {
 public:
  bool parked() const { return static_cast<bool>(handle_); }

  void Park(std::coroutine_handle<> h, runtime::EventLoop* loop) {
    COHORT_CHECK(!handle_, "two coroutines waiting on one stream direction");
    handle_ = h;
    loop_ = loop;
  }

  // Takes the parked coroutine, if any, for the caller to post once unlocked.
  [[nodiscard]] Wakeup TakeLocked() { return Wakeup(std::exchange(handle_, {}), loop_); }

 private:
  std::coroutine_handle<> handle_;
  runtime::EventLoop* loop_ = nullptr;
};

}  // namespace cohort::rpc::internal
