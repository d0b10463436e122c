#include "libs/runtime/clock.h"

namespace cohort::runtime {

SteadyClock* SteadyClock::Get() {
  static SteadyClock clock;
  return &clock;
}

void ManualClock::AdvanceTo(TimePoint t) {
  Duration::rep target = t.time_since_epoch().count();
  Duration::rep current = now_.load(std::memory_order_acquire);
  while (current < target &&
         !now_.compare_exchange_weak(current, target, std::memory_order_acq_rel)) {
  }
}

}  // namespace cohort::runtime
