#pragma once

#include <coroutine>
#include <mutex>

#include "grpcpp/support/status.h"
#include "libs/rpc/internal/loop_waiter.h"
#include "libs/runtime/event_loop.h"

namespace cohort::rpc::internal {

// The end of a client stream (ClientBidiStream, ClientReadStream). The reactor holds
// gRPC's OnDone back (AddHold at start) until Finish() is awaited: Finish() parks the
// coroutine, then releases the hold; OnDone records the status under the stream's
// mutex and wakes it through its loop. So the reactor outlives every gRPC callback.
class CallEnd {
 public:
  // From OnDone, with the stream's mutex held; the caller posts the returned wake-up
  // once it has released the mutex.
  [[nodiscard]] Wakeup DoneLocked(const grpc::Status& status) {
    status_ = status;
    done_ = true;
    return waiter_.TakeLocked();
  }
  bool done() const { return done_; }

  // `grpc::Status s = co_await end.Finish(reactor, mu, loop)`.
  template <typename Reactor>
  auto Finish(Reactor* reactor, std::mutex& mu, runtime::EventLoop& loop) {
    return Awaiter<Reactor>{this, reactor, &mu, &loop};
  }

 private:
  template <typename Reactor>
  struct Awaiter {
    CallEnd* end;
    Reactor* reactor;
    std::mutex* mu;
    runtime::EventLoop* loop;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      {
        std::lock_guard<std::mutex> lock(*mu);
        if (end->done_) return false;
        end->waiter_.Park(h, loop);
      }
      reactor->RemoveHold();  // may run OnDone at once, which wakes us through the loop
      return true;
    }
    grpc::Status await_resume() {
      std::lock_guard<std::mutex> lock(*mu);
      return end->status_;
    }
  };

  grpc::Status status_;
  bool done_ = false;
  LoopWaiter waiter_;
};

}  // namespace cohort::rpc::internal
