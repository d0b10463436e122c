#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "libs/rpc/internal/loop_waiter.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_handle.h"

namespace cohort::rpc {

// Buffer sizes of a pipelined stream (messages, per direction).
inline constexpr std::size_t kStreamInbox = 64;
inline constexpr std::size_t kStreamOutbox = 64;

// A bidirectional server stream bridged to a coroutine on a loop, pipelined: gRPC's
// callback threads keep one read in flight into a bounded inbox and drain a bounded
// outbox write after write, and wake the loop only when its coroutine is blocked
// (inbox empty, outbox full). Memory is bounded: a client that sends faster than the
// handler reads stops being read (HTTP/2 flow control pushes back), and a handler
// that writes faster than the client reads waits in Write().
//
// The handler owns the call: the stream ends with the status it returns. Read() and
// Write() are for the handler's coroutine only, one of each at a time.
template <typename Req, typename Resp>
class ServerBidiStream final : public grpc::ServerBidiReactor<Req, Resp> {
 public:
  // `co_await stream.Read()`: the next message, or nullopt once the client has
  // half-closed or gone away.
  auto Read() { return ReadAwaiter{this}; }
  // `bool ok = co_await stream.Write(msg)`: queues msg, waiting while the outbox is
  // full; false if the client has gone away (msg is dropped).
  auto Write(Resp msg) { return WriteAwaiter{this, std::move(msg)}; }
  grpc::CallbackServerContext* context() const { return ctx_; }

  template <typename Handler>
  ServerBidiStream(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx, Handler handler)
      : loop_(loop), ctx_(ctx), shared_(std::make_shared<Shared>()) {
    read_in_flight_ = true;
    this->StartRead(&read_buf_);
    loop_.Post([this, handler = std::move(handler), shared = shared_]() mutable {
      shared->task = runtime::Spawn(loop_, Run(std::move(handler)));
      if (shared->cancelled) shared->task.Cancel();
    });
  }

  void OnReadDone(bool ok) override {
    bool start = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_in_flight_ = false;
      if (ok) {
        inbox_.push_back(std::move(read_buf_));
        start = inbox_.size() < kStreamInbox && !finish_requested_;
        read_in_flight_ = start;
      } else {
        read_closed_ = true;
      }
      reader_.Wake();
    }
    if (start) this->StartRead(&read_buf_);
  }

  void OnWriteDone(bool ok) override {
    bool start = false;
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_in_flight_ = false;
      if (!ok) {
        broken_ = true;
        outbox_.clear();
      } else if (!outbox_.empty()) {
        write_buf_ = std::move(outbox_.front());
        outbox_.pop_front();
        write_in_flight_ = start = true;
      }
      writer_.Wake();
      finish = !write_in_flight_ && TakeFinishLocked();
    }
    if (start) this->StartWrite(&write_buf_);
    if (finish) this->Finish(finish_status_);
  }

  void OnCancel() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_closed_ = broken_ = true;
      outbox_.clear();
      reader_.Wake();
      writer_.Wake();
    }
    loop_.Post([shared = shared_] {
      shared->cancelled = true;
      if (shared->task.valid()) shared->task.Cancel();
    });
  }

  void OnDone() override { delete this; }

 private:
  struct Shared {
    bool cancelled = false;
    runtime::TaskHandle<void> task;
  };

  struct ReadAwaiter {
    ServerBidiStream* s;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard<std::mutex> lock(s->mu_);
      if (!s->inbox_.empty() || s->read_closed_) return false;
      s->reader_.Park(h, &s->loop_);
      return true;
    }
    std::optional<Req> await_resume() {
      std::optional<Req> msg;
      bool start = false;
      {
        std::lock_guard<std::mutex> lock(s->mu_);
        if (s->inbox_.empty()) return std::nullopt;
        msg.emplace(std::move(s->inbox_.front()));
        s->inbox_.pop_front();
        start = !s->read_in_flight_ && !s->read_closed_ && !s->finish_requested_;
        s->read_in_flight_ = s->read_in_flight_ || start;
      }
      if (start) s->StartRead(&s->read_buf_);
      return msg;
    }
  };

  struct WriteAwaiter {
    ServerBidiStream* s;
    Resp msg;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard<std::mutex> lock(s->mu_);
      if (s->broken_ || s->outbox_.size() < kStreamOutbox) return false;
      s->writer_.Park(h, &s->loop_);
      return true;
    }
    bool await_resume() {
      bool start = false;
      {
        std::lock_guard<std::mutex> lock(s->mu_);
        if (s->broken_) return false;
        if (s->write_in_flight_) {
          s->outbox_.push_back(std::move(msg));
        } else {
          s->write_buf_ = std::move(msg);
          s->write_in_flight_ = start = true;
        }
      }
      if (start) s->StartWrite(&s->write_buf_);
      return true;
    }
  };

  template <typename Handler>
  runtime::Task<void> Run(Handler handler) {
    grpc::Status status;
    try {
      status = co_await handler(*this);
    } catch (const runtime::CancelledError&) {
      status = grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    bool finish;
    {
      std::lock_guard<std::mutex> lock(mu_);
      finish_requested_ = true;
      finish_status_ = std::move(status);
      finish = !write_in_flight_ && TakeFinishLocked();
    }
    if (finish) this->Finish(finish_status_);  // last use of `this` on the loop
  }

  // True once, when the handler has returned and every queued write is out.
  bool TakeFinishLocked() {
    if (!finish_requested_ || finished_ || !(outbox_.empty() || broken_)) return false;
    finished_ = true;
    return true;
  }

  runtime::EventLoop& loop_;
  grpc::CallbackServerContext* const ctx_;
  std::shared_ptr<Shared> shared_;

  std::mutex mu_;
  std::deque<Req> inbox_;
  Req read_buf_;
  bool read_in_flight_ = false;
  bool read_closed_ = false;
  internal::LoopWaiter reader_;
  std::deque<Resp> outbox_;
  Resp write_buf_;
  bool write_in_flight_ = false;
  bool broken_ = false;
  internal::LoopWaiter writer_;
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

// Serves one bidi call with `handler`, a callable taking ServerBidiStream<Req, Resp>&
// and returning Task<grpc::Status>, run as a task on `loop`. Client cancellation
// cancels the handler (and ends its Read/Write); an escaping exception ends the call
// INTERNAL.
template <typename Req, typename Resp, typename Handler>
grpc::ServerBidiReactor<Req, Resp>* ServeBidi(runtime::EventLoop& loop, grpc::CallbackServerContext* ctx,
                                              Handler handler) {
  return new ServerBidiStream<Req, Resp>(loop, ctx, std::move(handler));
}

}  // namespace cohort::rpc
