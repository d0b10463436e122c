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
// Write() and gRPC's callback thread writes them one after another. Write() waits
// (backpressure) while `capacity` messages are queued or `max_bytes` are buffered
// (queued plus the one being written, by serialized size), so a stream holds at
// most `max_bytes` plus one message whatever the peer does; a message larger than
// `max_bytes` goes alone. Guarded by the stream's mutex.
template <typename Msg>
class Outbox {
 public:
  Outbox(std::mutex& mu, runtime::EventLoop& loop, WriteStarter<Msg>* starter, std::size_t capacity,
         std::size_t max_bytes)
      : mu_(mu), loop_(loop), starter_(starter), capacity_(capacity), max_bytes_(max_bytes) {}

  // The reactor's OnWriteDone; an !ok write breaks the stream (queued messages are
  // dropped, writers see false).
  void OnWriteDone(bool ok) {
    bool start = false;
    Wakeup wake;
    {
      std::lock_guard<std::mutex> lock(mu_);
      in_flight_ = false;
      buffered_bytes_ -= current_bytes_;
      current_bytes_ = 0;
      if (!ok) {
        MarkBrokenLocked();
      } else if (!queued_.empty()) {
        current_ = std::move(queued_.front().msg);
        current_bytes_ = queued_.front().bytes;
        queued_.pop_front();
        start = in_flight_ = true;
      }
      if (broken_ || HasRoomLocked()) wake = writer_.TakeLocked();
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

  // `bool ok = co_await outbox.Write(msg)`: waits for room, then queues msg; false
  // (msg dropped) if the stream is or becomes broken meanwhile.
  auto Write(Msg msg) {
    const std::size_t bytes = msg.ByteSizeLong();
    return Awaiter{this, std::move(msg), bytes};
  }

 private:
  struct Queued {
    Msg msg;
    std::size_t bytes;
  };

  struct Awaiter {
    Outbox* out;
    Msg msg;
    std::size_t bytes;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard<std::mutex> lock(out->mu_);
      if (out->broken_ || out->HasRoomLocked()) return false;
      out->writer_.Park(h, &out->loop_);
      return true;
    }
    bool await_resume() {
      bool start = false;
      {
        std::lock_guard<std::mutex> lock(out->mu_);
        if (out->broken_) return false;
        out->buffered_bytes_ += bytes;
        if (out->in_flight_) {
          out->queued_.push_back(Queued{std::move(msg), bytes});
        } else {
          out->current_ = std::move(msg);
          out->current_bytes_ = bytes;
          start = out->in_flight_ = true;
        }
      }
      if (start) out->starter_->StartWriteOp(&out->current_);
      return true;
    }
  };

  bool HasRoomLocked() const { return queued_.size() < capacity_ && buffered_bytes_ < max_bytes_; }

  void MarkBrokenLocked() {
    broken_ = true;
    queued_.clear();
    buffered_bytes_ = current_bytes_;
  }

  std::mutex& mu_;
  runtime::EventLoop& loop_;
  WriteStarter<Msg>* const starter_;
  const std::size_t capacity_;
  const std::size_t max_bytes_;
  std::deque<Queued> queued_;
  std::size_t buffered_bytes_ = 0;  // queued_ and current_ while in flight
  Msg current_;  // owned by gRPC while a write is in flight
  std::size_t current_bytes_ = 0;
  bool in_flight_ = false;
  bool broken_ = false;
  LoopWaiter writer_;
};

}  // namespace cohort::rpc::internal
