#pragma once

#include <exception>
#include <memory>
#include <mutex>
#include <utility>

#include "grpcpp/support/server_callback.h"
#include "grpcpp/server_context.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::rpc {
namespace internal {

// A unary call served by a coroutine on a loop. Lives until gRPC's OnDone.
template <typename Handler>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(runtime::EventLoop& loop, Handler handler) : loop_(loop), shared_(std::make_shared<Shared>()) {
    loop_.Post([this, handler = std::move(handler), shared = shared_]() mutable {
      shared->task = runtime::Spawn(loop_, Run(std::move(handler)));
      if (shared->cancelled) shared->task.Cancel();
    });
  }

  void OnCancel() override {
    // Client gone or deadline passed: cancel the handler on its loop. `this` may be
    // deleted by then, so the lambda holds only the shared part.
    loop_.Post([shared = shared_] {
      shared->cancelled = true;
      if (shared->task.valid()) shared->task.Cancel();
    });
  }

  void OnDone() override { delete this; }

 private:
  // Loop-thread state that outlives the reactor.
  struct Shared {
    bool cancelled = false;
    runtime::TaskHandle<void> task;
  };

  runtime::Task<void> Run(Handler handler) {
    grpc::Status status;
    try {
      status = co_await handler();
    } catch (const runtime::CancelledError&) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    Finish(status);  // last use of `this`: OnDone may delete it at once
  }

  runtime::EventLoop& loop_;
  std::shared_ptr<Shared> shared_;
};

}  // namespace internal

// Serves one unary call with `handler`, a callable returning Task<grpc::Status>, run
// as a task on `loop` (so it may touch the loop's state freely). Returns the reactor
// gRPC's callback API expects. The handler fills the response it captured; the
// request and response stay valid until it returns. If the client cancels or the
// deadline passes, the handler is cancelled (CancelledError at its suspension point)
// and the call ends CANCELLED; an escaping exception ends it INTERNAL.
//
//   grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const Req* req,
//                                 Resp* resp) override {
//     return rpc::ServeUnary(loop_, [=, this]() -> Task<grpc::Status> { ... });
//   }
template <typename Handler>
grpc::ServerUnaryReactor* ServeUnary(runtime::EventLoop& loop, Handler handler) {
  return new internal::UnaryCall<Handler>(loop, std::move(handler));
}

}  // namespace cohort::rpc
