#pragma once

#include <utility>

#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "libs/rpc/internal/handler_task.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::rpc {
namespace internal {

// A unary call served by a coroutine on a loop. Lives until gRPC's OnDone.
template <typename Handler>
class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  UnaryCall(runtime::EventLoop& loop, Handler handler) : task_(loop), handler_(std::move(handler)) {
    task_.Start([this] { return Run(); });
  }
  void OnCancel() override { task_.Cancel(); }
  void OnDone() override { delete this; }

 private:
  runtime::Task<void> Run() {
    grpc::Status status = co_await StatusOf(handler_());
    Finish(std::move(status));  // last use of `this`: OnDone may delete it at once
  }

  HandlerTask task_;
  Handler handler_;
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
