#pragma once

#include <coroutine>
#include <mutex>
#include <optional>
#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "libs/rpc/stream_buffers.h"
#include "libs/runtime/check.h"
#include "libs/rpc/internal/call_end.h"
#include "libs/rpc/internal/inbox.h"
#include "libs/rpc/internal/outbox.h"
#include "libs/runtime/event_loop.h"

namespace cohort::rpc {

// The client side of a bidi stream, pipelined like ServerBidiStream: one read always
// in flight into a bounded inbox, writes drained from a bounded outbox by gRPC's
// threads. Used by one coroutine of `loop`, one Read and one Write at a time.
//
//   ClientBidiStream<Req, Resp> stream(loop);
//   stub->async()->Chat(stream.context(), &stream);
//   stream.Start();
//   co_await stream.Write(req);
//   std::optional<Resp> resp = co_await stream.Read();
//   stream.CloseWrites();
//   grpc::Status status = co_await stream.Finish();   // required before destruction
template <typename Req, typename Resp>
class ClientBidiStream final : public grpc::ClientBidiReactor<Req, Resp>,
                               private internal::ReadStarter<Resp>,
                               private internal::WriteStarter<Req> {
 public:
  explicit ClientBidiStream(runtime::EventLoop& loop)
      : loop_(loop), inbox_(mu_, loop, this, kStreamInbox), outbox_(mu_, loop, this, kStreamOutbox, kStreamOutboxBytes) {}
  // Destroying a stream gRPC still uses would corrupt memory later, far from the
  // mistake: abort at once instead.
  ~ClientBidiStream() { COHORT_CHECK(end_.done(), "ClientBidiStream destroyed before Finish() returned"); }

  grpc::ClientContext* context() { return &ctx_; }

  // Starts the call (after the stub's async method has bound this reactor).
  void Start() {
    this->AddHold();  // no OnDone before Finish(), whatever the server does
    inbox_.Begin();
    this->StartCall();
  }

  // The next message, or nullopt once the server has ended the stream.
  auto Read() { return inbox_.Read(); }
  // Queues msg; false if the stream is broken.
  auto Write(Req msg) { return outbox_.Write(std::move(msg)); }
  // Half-closes once every queued message is written.
  void CloseWrites() {
    bool now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      close_requested_ = true;
      now = TakeWritesDoneLocked();
    }
    if (now) this->StartWritesDone();
  }
  // Cancels the call (any thread).
  void Cancel() { ctx_.TryCancel(); }

  // `grpc::Status s = co_await stream.Finish()`: releases the stream and waits for its
  // final status. Read/Write must not be used afterwards.
  auto Finish() { return end_.Finish(this, mu_, loop_); }

  void OnReadDone(bool ok) override { inbox_.OnReadDone(ok); }
  void OnWriteDone(bool ok) override {
    outbox_.OnWriteDone(ok);
    bool now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      now = TakeWritesDoneLocked();
    }
    if (now) this->StartWritesDone();
  }
  void OnDone(const grpc::Status& status) override {
    internal::Wakeup finisher;
    internal::Wakeup reader;
    internal::Wakeup writer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finisher = end_.DoneLocked(status);
      reader = inbox_.StopLocked();
      writer = outbox_.BreakLocked();
    }
    // Once `finisher` runs, the owner may destroy this stream: only locals from here.
    reader.Post();
    writer.Post();
    finisher.Post();
  }

 private:
  void StartReadOp(Resp* buffer) override { this->StartRead(buffer); }
  void StartWriteOp(const Req* message) override { this->StartWrite(message); }

  bool TakeWritesDoneLocked() {
    if (!close_requested_ || writes_done_ || !outbox_.IdleLocked()) return false;
    writes_done_ = true;
    return true;
  }

  runtime::EventLoop& loop_;
  grpc::ClientContext ctx_;
  std::mutex mu_;
  internal::Inbox<Resp> inbox_;
  internal::Outbox<Req> outbox_;
  bool close_requested_ = false;
  bool writes_done_ = false;
  internal::CallEnd end_;
};

}  // namespace cohort::rpc
