#pragma once

#include <optional>
#include <utility>

#include "libs/runtime/event.h"
#include "libs/runtime/check.h"
#include "libs/runtime/task.h"

namespace cohort::runtime {

// A shutdown gate (Seastar's gate): work enters while the gate is open; Close()
// refuses new entries and waits until everything inside has left. Loop thread only.
//
//   std::optional<Gate::Holder> h = gate.TryEnter();
//   if (!h) return absl::UnavailableError("shutting down");
//   ... co_await work ...            // the holder leaves when destroyed
//
//   co_await gate.Close();           // in shutdown: after this, nothing is in flight
class Gate {
 public:
  // Presence of one unit of work inside the gate; leaves when destroyed. Move-only.
  class Holder {
   public:
    Holder(Holder&& other) noexcept : gate_(std::exchange(other.gate_, nullptr)) {}
    Holder& operator=(Holder&&) = delete;
    ~Holder() {
      if (gate_) gate_->Leave();
    }

   private:
    friend class Gate;
    explicit Holder(Gate* gate) : gate_(gate) {}
    Gate* gate_;
  };

  ~Gate() { COHORT_CHECK(count_ == 0, "Gate destroyed with work inside"); }

  // A holder, or nullopt once Close() has been called.
  std::optional<Holder> TryEnter() {
    if (closed_) return std::nullopt;
    ++count_;
    return Holder(this);
  }
  bool closed() const { return closed_; }
  int count() const { return count_; }

  // Refuses new entries, then waits until every holder has left. Cancellable (the
  // gate stays closed).
  Task<void> Close() {
    closed_ = true;
    if (count_ > 0) co_await drained_.Wait();
  }

 private:
  void Leave() {
    if (--count_ == 0 && closed_) drained_.Set();
  }

  bool closed_ = false;
  int count_ = 0;
  Event drained_;
};

}  // namespace cohort::runtime
