#include "services/scheduler/schedule_spec.h"

#include "absl/strings/str_cat.h"
#include "libs/common/names.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"
#include "services/scheduler/cron/cron_expression.h"

namespace cohort::scheduler {
namespace {

// Where the search for a cron's first slot starts: any fixed time serves, as NextAfter
// covers a whole 400-year Gregorian cycle, and a fixed one keeps validation free of
// the clock.
const absl::Time kCronSearchFrom = absl::UnixEpoch();

}  // namespace

absl::Status ValidateScheduleId(absl::string_view id) { return common::CheckName(id, "schedule_id "); }

absl::StatusOr<Trigger> TriggerOf(const cohort::v1::ScheduleSpec& spec) {
  switch (spec.trigger_case()) {
    case cohort::v1::ScheduleSpec::kInterval: {
      absl::StatusOr<absl::Duration> interval =
          common::DurationFromWire(spec.interval(), "spec.interval", kMaxScheduleInterval);
      if (!interval.ok()) return interval.status();
      return Trigger::Interval(*interval);
    }
    case cohort::v1::ScheduleSpec::kCron: {
      absl::StatusOr<CronExpression> expression = CronExpression::Parse(spec.cron().expression());
      if (!expression.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("spec.cron.expression: ", expression.status().message()));
      }
      absl::StatusOr<absl::TimeZone> zone = LoadCronTimeZone(spec.cron().time_zone());
      if (!zone.ok()) return absl::InvalidArgumentError(absl::StrCat("spec.cron.time_zone: ", zone.status().message()));
      return Trigger::Cron(*std::move(expression), *zone);
    }
    default:
      return absl::InvalidArgumentError("spec needs exactly one of interval or cron");
  }
}

absl::StatusOr<Trigger> ValidateScheduleSpec(const cohort::v1::ScheduleSpec& spec, absl::Duration min_interval) {
  if (!spec.has_job()) return absl::InvalidArgumentError("spec.job (the job template) is required");
  const cohort::v1::JobSpec& job = spec.job();
  if (job.has_run_at()) return absl::InvalidArgumentError("spec.job.run_at must be unset: slots set the time");
  if (job.has_deadline()) return absl::InvalidArgumentError("spec.job.deadline must be unset (use timeout)");
  if (job.depends_on_size() > 0 || job.depends_on_index_size() > 0) {
    return absl::InvalidArgumentError("spec.job.depends_on and depends_on_index must be empty");
  }
  if (!job.idempotency_key().empty()) {
    return absl::InvalidArgumentError("spec.job.idempotency_key must be empty: the scheduler sets one per slot");
  }
  absl::StatusOr<Trigger> trigger = TriggerOf(spec);
  if (!trigger.ok()) return trigger.status();
  // A cron that names no real date ("0 2 30 2 *") parses, as in Vixie cron, but would
  // sit in the store never firing: refuse it. NextAfter searches a whole 400-year
  // Gregorian cycle, so a slot that exists at all is found.
  if (spec.has_cron() && trigger->NextAfter(kCronSearchFrom) == absl::InfiniteFuture()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "spec.cron.expression ", common::QuoteBounded(spec.cron().expression()),
        " never fires: no date matches its day-of-month, month and day-of-week fields (e.g. February 30)"));
  }
  if (spec.has_interval()) {
    const absl::Duration interval = trigger->TypicalSpacing();
    if (interval < min_interval) {
      return absl::InvalidArgumentError(absl::StrCat("spec.interval ", absl::FormatDuration(interval),
                                                     " is under the minimum ", absl::FormatDuration(min_interval)));
    }
  }
  if (!cohort::v1::OverlapPolicy_IsValid(spec.overlap_policy())) {
    return absl::InvalidArgumentError(absl::StrCat("spec.overlap_policy ", spec.overlap_policy(), " is unknown"));
  }
  if (!cohort::v1::CatchUpPolicy_IsValid(spec.catch_up_policy())) {
    return absl::InvalidArgumentError(absl::StrCat("spec.catch_up_policy ", spec.catch_up_policy(), " is unknown"));
  }
  if (spec.catch_up_limit() < 0 || spec.catch_up_limit() > kMaxCatchUpSlots) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.catch_up_limit ", spec.catch_up_limit(), " is out of range 0-", kMaxCatchUpSlots));
  }
  if (spec.catch_up_policy() == cohort::v1::CATCH_UP_POLICY_RUN_ALL && spec.catch_up_limit() < 1) {
    return absl::InvalidArgumentError("spec.catch_up_limit must be at least 1 with CATCH_UP_POLICY_RUN_ALL");
  }
  return trigger;
}

CatchUpPolicy CatchUpPolicyOf(const cohort::v1::ScheduleSpec& spec) {
  switch (spec.catch_up_policy()) {
    case cohort::v1::CATCH_UP_POLICY_SKIP_MISSED: return CatchUpPolicy::kSkipMissed;
    case cohort::v1::CATCH_UP_POLICY_RUN_ALL: return CatchUpPolicy::kRunAll;
    default: return CatchUpPolicy::kRunOnce;
  }
}

cohort::v1::JobSpec JobForSlot(const std::string& schedule_id, const cohort::v1::ScheduleSpec& spec,
                               std::optional<absl::Time> slot) {
  cohort::v1::JobSpec job = spec.job();
  (*job.mutable_labels())[kScheduleLabel] = schedule_id;
  if (slot.has_value()) {
    job.set_idempotency_key(absl::StrCat("cohort.schedule/", schedule_id, "/",
                                         absl::FormatTime(absl::RFC3339_full, *slot, absl::UTCTimeZone())));
  }
  return job;
}

}  // namespace cohort::scheduler
