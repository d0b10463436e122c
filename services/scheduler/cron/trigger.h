#pragma once

#include <utility>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/scheduler/cron/cron_expression.h"

namespace cohort::scheduler {

// The first multiple of `interval` since the Unix epoch (UTC) strictly after `after`:
// interval slots do not move when the scheduler restarts. Exact (absl::Duration
// arithmetic, no rounding), also before the epoch, and saturating: a slot beyond
// absl::Time's range is absl::InfiniteFuture(), never a wrapped earlier time. `interval`
// must be positive and finite; otherwise, and for an infinite `after`, returns
// absl::InfiniteFuture().
absl::Time NextIntervalSlotAfter(absl::Time after, absl::Duration interval);

// When a schedule fires: the proto's ScheduleSpec.trigger, either a cron expression in
// a time zone or a fixed interval, reduced to one operation, NextAfter. Successive
// NextAfter calls, each with the previous result, visit every slot once in increasing
// order. Immutable, cheap to copy, safe to share across threads.
class Trigger {
 public:
  // Slots of `expression` in `zone` (see CronExpression::NextAfter for DST).
  static Trigger Cron(CronExpression expression, absl::TimeZone zone);

  // Slots at the multiples of `interval` since the Unix epoch. INVALID_ARGUMENT unless
  // `interval` is positive and finite; a configured minimum is the caller's to check.
  static absl::StatusOr<Trigger> Interval(absl::Duration interval);

  // The first slot strictly after `after`; absl::InfiniteFuture() if there is none.
  absl::Time NextAfter(absl::Time after) const;

  // The finest spacing of slots: the interval, or a minute for cron. A first guess for
  // how far back a given number of slots reaches (PlanCatchUp). Always positive.
  absl::Duration TypicalSpacing() const;

 private:
  struct CronSlots {
    CronExpression expression;
    absl::TimeZone zone;
  };
  explicit Trigger(std::variant<CronSlots, absl::Duration> slots) : slots_(std::move(slots)) {}

  std::variant<CronSlots, absl::Duration> slots_;
};

}  // namespace cohort::scheduler
