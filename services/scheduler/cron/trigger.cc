#include "services/scheduler/cron/trigger.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cohort::scheduler {

absl::Time NextIntervalSlotAfter(absl::Time after, absl::Duration interval) {
  if (interval <= absl::ZeroDuration() || interval == absl::InfiniteDuration() ||
      after == absl::InfiniteFuture() || after == absl::InfinitePast()) {
    return absl::InfiniteFuture();
  }
  // Duration's % is exact at any magnitude (IDivDuration's quotient saturates at int64,
  // and so would a slot count), and Duration arithmetic saturates to infinity.
  const absl::Duration since_epoch = after - absl::UnixEpoch();
  const absl::Duration remainder = since_epoch % interval;  // sign of since_epoch
  // since_epoch - remainder is the slot at or toward zero from `after`: for a negative
  // remainder that is the next slot already, otherwise the next one is an interval on.
  const absl::Duration step = remainder < absl::ZeroDuration() ? absl::ZeroDuration() : interval;
  return absl::UnixEpoch() + (since_epoch - remainder + step);
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
