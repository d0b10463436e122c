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
// Its loop-side state outlives the reactor, so a cancellation posted just before the
// reactor is deleted is harmless.
class HandlerTask {
 public:
  explicit HandlerTask(runtime::EventLoop& loop) : loop_(loop), shared_(std::make_shared<Shared>()) {}

  // Any thread: spawns make() (returning Task<void>) on the loop.
  template <typename Make>
  void Start(Make make) {
    loop_.Post([shared = shared_, make = std::move(make), &loop = loop_]() mutable {
      shared->task = runtime::Spawn(loop, make());
      if (shared->cancelled) shared->task.Cancel();
    });
  }

  // Any thread: cancels the task (before or after it started).
  void Cancel() {
    loop_.Post([shared = shared_] {
      shared->cancelled = true;
      if (shared->task.valid()) shared->task.Cancel();
    });
  }

  runtime::EventLoop& loop() const { return loop_; }

 private:
  struct Shared {
    bool cancelled = false;
    runtime::TaskHandle<void> task;
  };
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
