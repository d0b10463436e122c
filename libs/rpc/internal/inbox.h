#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>

#include "libs/rpc/internal/loop_waiter.h"
#include "libs/runtime/event_loop.h"

namespace cohort::rpc::internal {

// How an Inbox asks its reactor to read the next message into a buffer.
template <typename Msg>
class ReadStarter {
 public:
  virtual void StartReadOp(Msg* buffer) = 0;

 protected:
  ~ReadStarter() = default;
};

// The read side of a pipelined stream: gRPC's callback thread keeps one read in
// flight while fewer than `capacity` messages wait, and the loop's coroutine takes
// them with Read(). Guarded by the stream's mutex.
template <typename Msg>
class Inbox {
 public:
  Inbox(std::mutex& mu, runtime::EventLoop& loop, ReadStarter<Msg>* starter, std::size_t capacity)
      : mu_(mu), loop_(loop), starter_(starter), capacity_(capacity) {}

  // Starts the first read (any thread, before the stream is shared).
  void Begin() {
    in_flight_ = true;
    starter_->StartReadOp(&buffer_);
  }

  // The reactor's OnReadDone. Keeps reading while there is room and the stream is
  // open; an !ok read ends the inbox.
  void OnReadDone(bool ok) {
    bool start = false;
    Wakeup wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = false;
      if (ok) {
        messages_.push_back(std::move(buffer_));
        start = in_flight_ = messages_.size() < capacity_ && !stopped_;
      } else {
        stopped_ = true;
      }
      wake = reader_.TakeLocked();
    }
    if (start) starter_->StartReadOp(&buffer_);
    wake.Post();
  }

  // No more reads (finish, cancellation). Mutex held; the caller posts the returned
  // wake-up of a waiting reader once it has released the mutex.
  [[nodiscard]] Wakeup StopLocked() {
    stopped_ = true;
    return reader_.TakeLocked();
  }

  // `co_await inbox.Read()`: the next message, or nullopt once the stream ended and
  // every message was taken.
  auto Read() { return Awaiter{this}; }

 private:
  struct Awaiter {
    Inbox* in;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard<std::mutex> lock(in->mu_);
      if (!in->messages_.empty() || (in->stopped_ && !in->in_flight_)) return false;
      in->reader_.Park(h, &in->loop_);
      return true;
    }
    std::optional<Msg> await_resume() {
      std::optional<Msg> msg;
      bool start = false;
      {
        std::lock_guard<std::mutex> lock(in->mu_);
        if (in->messages_.empty()) return std::nullopt;
        msg.emplace(std::move(in->messages_.front()));
        in->messages_.pop_front();
        start = !in->in_flight_ && !in->stopped_;
        in->in_flight_ = in->in_flight_ || start;
      }
      if (start) in->starter_->StartReadOp(&in->buffer_);
      return msg;
    }
  };

  std::mutex& mu_;
  runtime::EventLoop& loop_;
  ReadStarter<Msg>* const starter_;
  const std::size_t capacity_;
  std::deque<Msg> messages_;
  Msg buffer_;  // owned by gRPC while a read is in flight
  bool in_flight_ = false;
  bool stopped_ = false;
  LoopWaiter reader_;
};

}  // namespace cohort::rpc::internal
