#pragma once

#include <coroutine>
#include <cstddef>
#include <deque>
#include <mutex>
#include <utility>

#include "libs/rpc/internal/loop_waiter.h"
#include "libs/runtime/event_loop.h"

namespace cohort::rpc::internal {

// How an Outbox asks its reactor to write a message.
template <typename Msg>
class WriteStarter {
 public:
  virtual void StartWriteOp(const Msg* message) = 0;

 protected:
  ~WriteStarter() = default;
};

// The write side of a pipelined stream: the loop's coroutine queues messages with
// Write(), waiting only while `capacity` are queued, and gRPC's callback thread
// writes them one after another. Guarded by the stream's mutex.
template <typename Msg>
class Outbox {
 public:
  Outbox(std::mutex& mu, runtime::EventLoop& loop, WriteStarter<Msg>* starter, std::size_t capacity)
      : mu_(mu), loop_(loop), starter_(starter), capacity_(capacity) {}

  // The reactor's OnWriteDone; an !ok write breaks the stream (queued messages are
  // dropped, writers see false).
  void OnWriteDone(bool ok) {
    bool start = false;
    Wakeup wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = false;
      if (!ok) {
        MarkBrokenLocked();
      } else if (!queued_.empty()) {
        current_ = std::move(queued_.front());
        queued_.pop_front();
        start = in_flight_ = true;
      }
      wake = writer_.TakeLocked();
    }
    if (start) starter_->StartWriteOp(&current_);
    wake.Post();
  }

  // The peer is gone: drop what is queued and fail writers. Mutex held; the caller
  // posts the returned wake-up of a waiting writer once it has released the mutex.
  [[nodiscard]] Wakeup BreakLocked() {
    MarkBrokenLocked();
    return writer_.TakeLocked();
  }

  // True when nothing is queued or being written (or the stream is broken). Mutex held.
  bool IdleLocked() const { return broken_ || (!in_flight_ && queued_.empty()); }

  // `bool ok = co_await outbox.Write(msg)`: false if the stream is broken.
  auto Write(Msg msg) { return Awaiter{this, std::move(msg)}; }

 private:
  struct Awaiter {
    Outbox* out;
    Msg msg;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard<std::mutex> lock(out->mu_);
      if (out->broken_ || out->queued_.size() < out->capacity_) return false;
      out->writer_.Park(h, &out->loop_);
      return true;
    }
    bool await_resume() {
      bool start = false;
      {
        std::lock_guard<std::mutex> lock(out->mu_);
        if (out->broken_) return false;
        if (out->in_flight_) {
          out->queued_.push_back(std::move(msg));
        } else {
          out->current_ = std::move(msg);
          start = out->in_flight_ = true;
        }
      }
      if (start) out->starter_->StartWriteOp(&out->current_);
      return true;
    }
  };

  void MarkBrokenLocked() {
    broken_ = true;
    queued_.clear();
  }

  std::mutex& mu_;
  runtime::EventLoop& loop_;
  WriteStarter<Msg>* const starter_;
  const std::size_t capacity_;
  std::deque<Msg> queued_;
  Msg current_;  // owned by gRPC while a write is in flight
  bool in_flight_ = false;
  bool broken_ = false;
  LoopWaiter writer_;
};

}  // namespace cohort::rpc::internal
