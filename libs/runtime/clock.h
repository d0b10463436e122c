#pragma once

#include <atomic>
#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cohort::runtime {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::time_point<std::chrono::steady_clock, Duration>;

// The one time source of an EventLoop and of every engine on it (Envoy's TimeSource):
// Now() is monotonic, for timeouts, leases and timers; SystemNow() is wall time, for
// what is stored or sent (TTL, run_at, backoff not-before, retention). Both move
// together under a ManualClock, so a manual-clock test moves TTLs as well as leases.
// Both may be called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint Now() const = 0;
  virtual absl::Time SystemNow() const = 0;
  // True for clocks that only move when told to (ManualClock): the loop then never
  // sleeps for real time, and may jump to its next timer when idle (auto-advance).
  virtual bool IsManual() const { return false; }
  virtual bool AutoAdvance() const { return false; }
  virtual void AdvanceTo(TimePoint) {}
};

// std::chrono::steady_clock. Stateless: SteadyClock::Get() is shared by every loop.
class SteadyClock final : public Clock {
 public:
  static SteadyClock* Get();
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  absl::Time SystemNow() const override { return absl::Now(); }
};

// A clock for tests that moves only by Advance()/AdvanceTo() (Seastar's manual_clock,
// trio's MockClock). With auto-advance on, a loop that has nothing to run and no work
// outside the loop in flight jumps straight to its next timer, so timer logic runs
// deterministically and instantly. SystemNow() is `system_start` plus the time advanced.
// Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(bool auto_advance = false, absl::Time system_start = absl::Now())
      : auto_advance_(auto_advance), system_start_(system_start) {}

  TimePoint Now() const override { return TimePoint(Duration(now_.load(std::memory_order_acquire))); }
  absl::Time SystemNow() const override {
    return system_start_ + absl::Nanoseconds(now_.load(std::memory_order_acquire));
  }
  bool IsManual() const override { return true; }
  bool AutoAdvance() const override { return auto_advance_; }

  void Advance(Duration d) { now_.fetch_add(d.count(), std::memory_order_acq_rel); }
  // Moves time forward to t; never backwards.
  void AdvanceTo(TimePoint t) override;

 private:
  const bool auto_advance_;
  const absl::Time system_start_;
  std::atomic<Duration::rep> now_{0};
};

}  // namespace cohort::runtime
