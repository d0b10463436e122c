#pragma once

#include <exception>
#include <memory>
#include <utility>

#include "grpcpp/support/status.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::rpc::internal {

// The task that serves one call on a loop, started and cancelled from gRPC's threads.
// The handler always starts, even when its call was cancelled first (a deadline that
// passed while the call was queued): the cancellation is then raised at its first
// suspension point, so what a handler does when cancelled (WaitFor cancels its job when
// the call's deadline passes) never depends on how busy the loop was. Its loop-side
// state outlives the reactor, so a cancellation posted just before the reactor is
// deleted is harmless.
class HandlerTask {
 public:
  explicit HandlerTask(runtime::EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}
  // Any thread: spawns make() (returning Task<void>) on the loop.
  template <typename Make>
  void Start(Make make) {
    loop_.Post([shared = shared_, make = std::move(make), &loop = loop_]() mutable {
      shared->task = runtime::Spawn(loop, Begin(shared, make()));
    });
  }
  // Any thread: cancels the task (before or after it started).
  void Cancel() {
    loop_.Post([shared = shared_] {
      shared->cancelled = true;
      if (shared->started) shared->task.Cancel();
    });
  }
  runtime::EventLoop& loop() const { return loop_; }

 private:
  struct Shared {
    bool started = false;
    bool cancelled = false;
    runtime::TaskHandle<void> task;
  };
  // Runs body; a cancellation that came before this started is requested now, from
  // inside the running task, so body's first suspension point raises it.
  static runtime::Task<void> Begin(std::shared_ptr<Shared> shared, runtime::Task<void> body) {
    shared->started = true;
    if (shared->cancelled) shared->task.Cancel();
    co_await std::move(body);
  }

  runtime::EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
};

// Awaits a handler's Task<grpc::Status>, turning CancelledError into CANCELLED and
// any other escaping exception into INTERNAL.
template <typename Awaitable>
runtime::Task<grpc::Status> StatusOf(Awaitable handler_call) {
  try {
    co_return co_await std::move(handler_call);
  } catch (const runtime::CancelledError&) {
    co_return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
  } catch (const std::exception& e) {
    co_return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
  }
}

}  // namespace cohort::rpc::internal
