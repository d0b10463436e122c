#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>

#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "libs/rpc/internal/call_finisher.h"
#include "libs/rpc/internal/handler_task.h"
#include "libs/rpc/internal/inbox.h"
#include "libs/rpc/internal/outbox.h"
#include "libs/rpc/stream_buffers.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::rpc {

// A bidirectional server stream bridged to a coroutine on a loop, pipelined: gRPC's
// callback threads keep one read in flight into a bounded inbox and drain a bounded
// outbox write after write, and wake the loop only when its coroutine is blocked
// (inbox empty, outbox full). Memory is bounded: a client that sends faster than the
// handler reads stops being read (HTTP/2 flow control pushes back), and a handler
// that writes faster than the client reads waits in Write().
//
// The handler owns the call: the stream ends with the status it returns, once every
// queued message is written. Read() and Write() are for the handler's coroutine, one
// of each at a time; they are not cancellation points, but the client going away
// ends them (Read gives nullopt, Write false) and cancels the handler.
template <typename Req, typename Resp>
class ServerBidiStream final : public grpc::ServerBidiReactor<Req, Resp>,
                               private internal::ReadStarter<Req>,
                               private internal::WriteStarter<Resp> {
 public:
  // `co_await stream.Read()`: the next message, or nullopt once the client has
  // half-closed or gone away.
  auto Read() { return inbox_.Read(); }
  // `bool ok = co_await stream.Write(msg)`: queues msg, waiting while the outbox is
  // full; false if the client has gone away (msg is dropped).
  auto Write(Resp msg) { return outbox_.Write(std::move(msg)); }
  grpc::CallbackServerContext* context() const { return ctx_; }
  // For a handler that ends the call itself while its client is idle: a Read() waiting
  // now gives what was already received, or nullopt. Loop thread (the handler's).
  void EndReads() {
    internal::Wakeup reader;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reader = inbox_.StopLocked();
    }
    reader.Post();
  }

  template <typename Handler>
  ServerBidiStream(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx, Handler handler)
      : ctx_(ctx),
        task_(loop),
        inbox_(mu_, loop, this, kStreamInbox),
        outbox_(mu_, loop, this, kStreamOutbox, kStreamOutboxBytes) {
    inbox_.Begin();
    task_.Start([this, handler = std::move(handler)]() mutable { return Run(std::move(handler)); });
  }

  void OnReadDone(bool ok) override { inbox_.OnReadDone(ok); }
  void OnWriteDone(bool ok) override {
    outbox_.OnWriteDone(ok);
    FinishIfReady();
  }
  void OnCancel() override {
    internal::Wakeup reader;
    internal::Wakeup writer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reader = inbox_.StopLocked();
      writer = outbox_.BreakLocked();
    }
    reader.Post();
    writer.Post();
    task_.Cancel();
  }
  void OnDone() override { delete this; }

 private:
  void StartReadOp(Req* buffer) override { this->StartRead(buffer); }
  void StartWriteOp(const Resp* message) override { this->StartWrite(message); }

  template <typename Handler>
  runtime::Task<void> Run(Handler handler) {
    grpc::Status status = co_await internal::StatusOf(handler(*this));
    internal::Wakeup reader;  // none: the handler, the only reader, has returned
    {
      std::lock_guard<std::mutex> lock(mu_);
      finisher_.RequestLocked(std::move(status));
      reader = inbox_.StopLocked();
    }
    reader.Post();
    FinishIfReady();  // last use of `this` on the loop
  }

  void FinishIfReady() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finisher_.TakeLocked(outbox_.IdleLocked())) return;
    }
    this->Finish(finisher_.status());
  }

  grpc::CallbackServerContext* const ctx_;
  internal::HandlerTask task_;
  std::mutex mu_;
  internal::Inbox<Req> inbox_;
  internal::Outbox<Resp> outbox_;
  internal::CallFinisher finisher_;
};

// Serves one bidi call with `handler`, a callable taking ServerBidiStream<Req, Resp>&
// and returning Task<grpc::Status>, run as a task on `loop`.
template <typename Req, typename Resp, typename Handler>
grpc::ServerBidiReactor<Req, Resp>* ServeBidi(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx,
                                              Handler handler) {
  return new ServerBidiStream<Req, Resp>(loop, ctx, std::move(handler));
}

}  // namespace cohort::rpc
