#pragma once

#include <functional>
#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "libs/runtime/external_completion.h"

namespace cohort::rpc {
namespace internal {

template <typename Async, typename Req, typename Resp>
using AsyncUnaryMethod = void (Async::*)(grpc::ClientContext*, const Req*, Resp*,
                                         std::function<void(grpc::Status)>);

}  // namespace internal

// Calls a unary method through the generated callback stub and resumes the awaiting
// task on its own loop with the call's status (the response is filled on OK).
// `ctx`, `req` and `resp` must stay valid until the await returns. Cancelling the
// awaiting task cancels the call and raises CancelledError once gRPC is done with it.
// The call counts as the loop's external work while in flight: destroying the loop
// cancels it and waits for gRPC to complete it, and a manual clock does not jump ahead.
//
//   grpc::ClientContext ctx;
//   Resp resp;
//   grpc::Status s = co_await rpc::Call(stub->async(), &Stub::async::Method, &ctx, req, &resp);
template <typename Async, typename Req, typename Resp>
runtime::ExternalCompletion<grpc::Status> Call(Async* async, internal::AsyncUnaryMethod<Async, Req, Resp> method,
                                               grpc::ClientContext* ctx, const Req& req, Resp* resp) {
  return runtime::ExternalCompletion<grpc::Status>(
      [async, method, ctx, &req, resp](runtime::Completer<grpc::Status> done) {
        (async->*method)(ctx, &req, resp, [done](grpc::Status s) { done(std::move(s)); });
      },
      [ctx] { ctx->TryCancel(); });
}

}  // namespace cohort::rpc
