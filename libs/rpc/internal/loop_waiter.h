#pragma once

#include <coroutine>

#include "libs/runtime/event_loop.h"
#include "libs/runtime/internal/check.h"

namespace cohort::rpc::internal {

// One loop coroutine suspended until a gRPC callback thread signals it. The owner
// guards it with its own mutex: Park() and Wake() are called with that mutex held,
// so a wake-up between "nothing to do" and "suspend" is never lost. Wake() resumes
// the coroutine on its loop through Post (no allocation).
class LoopWaiter {
 public:
  bool parked() const { return static_cast<bool>(handle_); }

  void Park(std::coroutine_handle<> h, runtime::EventLoop* loop) {
    COHORT_CHECK(!handle_, "two coroutines waiting on one stream direction");
    handle_ = h;
    loop_ = loop;
  }

  // Resumes the parked coroutine, if any.
  void Wake() {
    if (!handle_) return;
    std::coroutine_handle<> h = std::exchange(handle_, {});
    loop_->Post(h);
  }

 private:
  std::coroutine_handle<> handle_;
  runtime::EventLoop* loop_ = nullptr;
};

}  // namespace cohort::rpc::internal
