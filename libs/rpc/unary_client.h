#pragma once

#include <coroutine>
#include <functional>

#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::rpc {
namespace internal {

template <typename Async, typename Req, typename Resp>
using AsyncUnaryMethod = void (Async::*)(grpc::ClientContext*, const Req*, Resp*,
                                         std::function<void(grpc::Status)>);

template <typename Async, typename Req, typename Resp>
class UnaryAwaiter final : public runtime::internal::SuspendPoint {
 public:
  UnaryAwaiter(Async* async, AsyncUnaryMethod<Async, Req, Resp> method, grpc::ClientContext* ctx,
               const Req* req, Resp* resp)
      : async_(async), method_(method), ctx_(ctx), req_(req), resp_(resp) {}

  bool await_ready() const noexcept { return false; }
  template <runtime::internal::TaskPromise P>
  void await_suspend(std::coroutine_handle<P> h) {
    task_ = h.promise().task;
    runtime::EventLoop* loop = task_->loop();
    if (task_->TakeCancelRequest()) {
      cancelled_ = true;
      ctx_->TryCancel();
    }
    task_->SuspendAt(this);
    // The call comes back through Post: until it has, the loop must neither end nor,
    // in its teardown, destroy this frame (gRPC's callback writes status_ into it).
    loop->AddExternalWork();
    (async_->*method_)(ctx_, req_, resp_, [this, loop, h](grpc::Status s) {
      status_ = std::move(s);
      loop->Post(std::coroutine_handle<>(h));  // Post's ring publishes status_
    });
  }
  grpc::Status await_resume() {
    task_->loop()->ReleaseExternalWork();
    task_->Resuming();
    if (cancelled_) {
      task_->CancelDelivered();
      throw runtime::CancelledError();
    }
    return std::move(status_);
  }

  // Cancelling the awaiting task cancels the call; the task resumes (and raises
  // CancelledError) once gRPC has completed it, so nothing outlives the frame.
  void CancelWait() override {
    cancelled_ = true;
    task_->DeliveringCancel();
    ctx_->TryCancel();
  }

 private:
  Async* async_;
  AsyncUnaryMethod<Async, Req, Resp> method_;
  grpc::ClientContext* ctx_;
  const Req* req_;
  Resp* resp_;
  runtime::internal::TaskState* task_ = nullptr;
  bool cancelled_ = false;
  grpc::Status status_;
};

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
auto Call(Async* async, internal::AsyncUnaryMethod<Async, Req, Resp> method, grpc::ClientContext* ctx,
          const Req& req, Resp* resp) {
  return internal::UnaryAwaiter<Async, Req, Resp>(async, method, ctx, &req, resp);
}

}  // namespace cohort::rpc
