#pragma once

#include <utility>

#include "absl/strings/string_view.h"
#include "grpcpp/support/server_callback.h"
#include "grpcpp/support/status.h"
#include "libs/rpc/unary_outcome.h"
#include "libs/rpc/unary_server.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::rpc {

// Runs `body` (a handler's task, unary or streaming) and calls `(*observe)(UnaryOutcome)`
// exactly once, on the loop, when it ends: with the handler's own code, CANCELLED when
// the call was cancelled, INTERNAL when the handler threw (and rethrows). `observe` must
// outlive the task. ServeObservedUnary below is this for unary calls; a server stream
// wraps its body in it directly.
template <typename Observer>
runtime::Task<grpc::Status> Observed(runtime::EventLoop& loop, absl::string_view method, Observer* observe,
                                     runtime::Task<grpc::Status> body) {
  const runtime::TimePoint start = loop.Now();
  try {
    grpc::Status status = co_await std::move(body);
    (*observe)(UnaryOutcome{method, status.error_code(), loop.Now() - start});
    co_return status;
  } catch (const runtime::CancelledError&) {
    (*observe)(UnaryOutcome{method, grpc::StatusCode::CANCELLED, loop.Now() - start});
    throw;
  } catch (...) {
    (*observe)(UnaryOutcome{method, grpc::StatusCode::INTERNAL, loop.Now() - start});
    throw;
  }
}

// ServeUnary (unary_server.h) for a handler whose every outcome a service records:
// `observe(UnaryOutcome)` is called exactly once per call, on the loop, when the handler
// ends, with the code the client gets: the handler's own, CANCELLED when the call was
// cancelled (client gone, deadline passed), INTERNAL when the handler threw. So the
// broker's and the scheduler's RPC metrics count the same things the same way.
//
//   grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext*, const Req* req, Resp* resp) override {
//     return rpc::ServeObservedUnary(loop_, "Get", [this](const rpc::UnaryOutcome& o) { metrics_.Rpc(o); },
//                                    [=, this]() -> Task<grpc::Status> { ... });
//   }
//
// `method` must outlive the call (a literal). `observe` is copied into the call.
template <typename Observer, typename Handler>
grpc::ServerUnaryReactor* ServeObservedUnary(runtime::EventLoop& loop, absl::string_view method, Observer observe,
                                             Handler handler) {
  return ServeUnary(loop, [&loop, method, observe = std::move(observe),
                           handler = std::move(handler)]() mutable -> runtime::Task<grpc::Status> {
    // The lambda lives in the call until gRPC's OnDone, after the task has ended, so the
    // task may point at its members.
    return Observed(loop, method, &observe, handler());
  });
}

}  // namespace cohort::rpc
