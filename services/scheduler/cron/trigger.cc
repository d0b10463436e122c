#include "services/scheduler/cron/trigger.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cohort::scheduler {

absl::Time NextIntervalSlotAfter(absl::Time after, absl::Duration interval) {
  if (interval <= absl::ZeroDuration() || interval == absl::InfiniteDuration() ||
      after == absl::InfiniteFuture() || after == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  absl::Duration remainder;
  std::int64_t slots = absl::IDivDuration(after - absl::UnixEpoch(), interval, &remainder);
  // IDivDuration truncates toward zero; slots before the epoch need the floor.
  if (remainder < absl::ZeroDuration()) --slots;
  return absl::UnixEpoch() + (slots + 1) * interval;
}

Trigger Trigger::Cron(CronExpression expression, absl::TimeZone zone) {
  return Trigger(CronSlots{std::move(expression), zone});
}

absl::StatusOr<Trigger> Trigger::Interval(absl::Duration interval) {
  if (interval <= absl::ZeroDuration() || interval == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(absl::StrCat("interval ", absl::FormatDuration(interval),
                                                   " is invalid: it must be positive and finite"));
  }
  return Trigger(interval);
}

absl::Time Trigger::NextAfter(absl::Time after) const {
  if (const auto* cron = std::get_if<CronSlots>(&slots_)) {
    return cron->expression.NextAfter(after, cron->zone);
  }
  return NextIntervalSlotAfter(after, std::get<absl::Duration>(slots_));
}

absl::Duration Trigger::TypicalSpacing() const {
  if (const auto* interval = std::get_if<absl::Duration>(&slots_)) return *interval;
  return absl::Minutes(1);
}

}  // namespace cohort::scheduler
