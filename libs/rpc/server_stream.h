#pragma once

#include <cstddef>
#include <mutex>
#include <utility>

#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "libs/rpc/internal/call_finisher.h"
#include "libs/rpc/internal/handler_task.h"
#include "libs/rpc/internal/outbox.h"
#include "libs/rpc/stream_buffers.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"

namespace cohort::rpc {

// A server-streaming call (one request, a stream of responses) served by a coroutine
// on a loop, with the same pipelined, bounded outbox as ServerBidiStream: Write()
// waits only while `outbox` messages (default kStreamOutbox) are queued behind the one
// being written or kStreamOutboxBytes are buffered, and returns false once the
// client has gone away (which also cancels the handler). The call ends with the
// handler's status after every queued message is written.
template <typename Resp>
class ServerWriteStream final : public grpc::ServerWriteReactor<Resp>, private internal::WriteStarter<Resp> {
 public:
  auto Write(Resp msg) { return outbox_.Write(std::move(msg)); }
  grpc::CallbackServerContext* context() const { return ctx_; }

  template <typename Handler>
  ServerWriteStream(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx, Handler handler,
                    std::size_t outbox = kStreamOutbox)
      : ctx_(ctx), task_(loop), outbox_(mu_, loop, this, outbox, kStreamOutboxBytes) {
    task_.Start([this, handler = std::move(handler)]() mutable { return Run(std::move(handler)); });
  }

  void OnWriteDone(bool ok) override {
    outbox_.OnWriteDone(ok);
    FinishIfReady();
  }
  void OnCancel() override {
    internal::Wakeup writer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writer = outbox_.BreakLocked();
    }
    writer.Post();
    task_.Cancel();
  }
  void OnDone() override { delete this; }

 private:
  void StartWriteOp(const Resp* message) override { this->StartWrite(message); }

  template <typename Handler>
  runtime::Task<void> Run(Handler handler) {
    grpc::Status status = co_await internal::StatusOf(handler(*this));
    {
      std::lock_guard<std::mutex> lock(mu_);
      finisher_.RequestLocked(std::move(status));
    }
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
  internal::Outbox<Resp> outbox_;
  internal::CallFinisher finisher_;
};

// Serves one server-streaming call with `handler`, a callable taking
// ServerWriteStream<Resp>& and returning Task<grpc::Status>, run on `loop`. `outbox`
// (at least 1) bounds the messages queued behind the one being written: a stream
// whose client reads slowly or not at all holds at most outbox + 2 messages (queued,
// in flight, and the one its handler is writing), and no more than
// kStreamOutboxBytes plus two messages.
template <typename Resp, typename Handler>
grpc::ServerWriteReactor<Resp>* ServeStream(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx,
                                            Handler handler, std::size_t outbox = kStreamOutbox) {
  return new ServerWriteStream<Resp>(loop, ctx, std::move(handler), outbox);
}

}  // namespace cohort::rpc
