#pragma once

#include <coroutine>
#include <mutex>
#include <utility>

#include "grpcpp/client_context.h"
#include "grpcpp/support/client_callback.h"
#include "libs/rpc/internal/call_end.h"
#include "libs/rpc/internal/inbox.h"
#include "libs/rpc/stream_buffers.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/check.h"

namespace cohort::rpc {

// The client side of a server-streaming call (e.g. Broker.Watch). One read is always
// in flight into a bounded inbox, so a slow reader applies backpressure to the server
// instead of buffering without end. Used by one coroutine of `loop`, one Read at a time.
// Owns its request, which must outlive the call.
//
//   ClientReadStream<Req, Resp> stream(loop, request);
//   stub->async()->Watch(stream.context(), &stream.request(), &stream);
//   stream.Start();
//   while (std::optional<Resp> msg = co_await stream.Read()) { ... }
//   grpc::Status status = co_await stream.Finish();   // required before destruction
template <typename Req, typename Resp>
class ClientReadStream final : public grpc::ClientReadReactor<Resp>, private internal::ReadStarter<Resp> {
 public:
  ClientReadStream(runtime::EventLoop& loop, Req request)
      : loop_(loop), request_(std::move(request)), inbox_(mu_, loop, this, kStreamInbox) {}
  // Destroying a stream gRPC still uses would corrupt memory later: abort at once.
  ~ClientReadStream() { COHORT_CHECK(end_.done(), "ClientReadStream destroyed before Finish() returned"); }

  grpc::ClientContext* context() { return &ctx_; }
  const Req& request() const { return request_; }

  // Starts the call (after the stub's async method has bound this reactor).
  void Start() {
    this->AddHold();  // no OnDone before Finish(), whatever the server does
    inbox_.Begin();
    this->StartCall();
  }

  // The next message, or nullopt once the stream has ended (see Finish for why).
  auto Read() { return inbox_.Read(); }
  // Cancels the call (any thread); a pending Read then returns nullopt.
  void Cancel() { ctx_.TryCancel(); }

  // `grpc::Status s = co_await stream.Finish()`: releases the stream and waits for its
  // final status. Read must not be used afterwards.
  auto Finish() { return end_.Finish(this, mu_, loop_); }

  void OnReadDone(bool ok) override { inbox_.OnReadDone(ok); }
  void OnDone(const grpc::Status& status) override {
    internal::Wakeup finisher;
    internal::Wakeup reader;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finisher = end_.DoneLocked(status);
      reader = inbox_.StopLocked();
    }
    // Once `finisher` runs, the owner may destroy this stream: only locals from here.
    reader.Post();
    finisher.Post();
  }

 private:
  void StartReadOp(Resp* buffer) override { this->StartRead(buffer); }

  runtime::EventLoop& loop_;
  grpc::ClientContext ctx_;
  const Req request_;
  std::mutex mu_;
  internal::Inbox<Resp> inbox_;
  internal::CallEnd end_;
};

}  // namespace cohort::rpc
