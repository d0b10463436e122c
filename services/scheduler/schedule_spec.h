#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/wire_time.h"
#include "protos/cohort/v1/job.pb.h"
#include "protos/cohort/v1/scheduler.pb.h"
#include "services/scheduler/cron/catch_up.h"
#include "services/scheduler/cron/trigger.h"

namespace cohort::scheduler {

// The label every job a schedule submits carries, with the schedule's id as value.
inline constexpr char kScheduleLabel[] = "cohort.schedule";

// The longest interval a schedule may have (100 years): its slots stay far inside what
// a timer can hold.
inline constexpr absl::Duration kMaxScheduleInterval = common::kMaxWireDuration;

// A schedule id follows common::kNameRule, [a-z0-9._-]{1,64}; INVALID_ARGUMENT
// "schedule_id <quoted id> is invalid: use [a-z0-9._-]{1,64}" otherwise.
absl::Status ValidateScheduleId(absl::string_view id);

// Checks every rule of ScheduleSpec that needs no broker (scheduler.proto) and returns
// its Trigger: the interval a well-formed Duration in [min_interval,
// kMaxScheduleInterval], the cron expression and time zone valid, the policies known,
// catch_up_limit in 0..kMaxCatchUpSlots. INVALID_ARGUMENT with a message naming the
// field and the rule, quoting at most a bounded prefix of caller text. The job
// template itself is checked by the broker (Submit validate_only on JobForSlot).
absl::StatusOr<Trigger> ValidateScheduleSpec(const cohort::v1::ScheduleSpec& spec, absl::Duration min_interval);

// The Trigger of a spec: its interval (range-checked as in ValidateScheduleSpec, but
// without the configured minimum) or its cron expression in its time zone.
// INVALID_ARGUMENT naming the field otherwise, e.g. for a spec stored before a rule
// existed.
absl::StatusOr<Trigger> TriggerOf(const cohort::v1::ScheduleSpec& spec);

CatchUpPolicy CatchUpPolicyOf(const cohort::v1::ScheduleSpec& spec);

// The job submitted for `slot` (or for a TriggerSchedule call, without one): the
// template, labelled with the schedule, and for a slot the idempotency key
// "cohort.schedule/<id>/<slot, RFC 3339 UTC>" that makes a slot fire at most once.
cohort::v1::JobSpec JobForSlot(const std::string& schedule_id, const cohort::v1::ScheduleSpec& spec,
                               std::optional<absl::Time> slot);

}  // namespace cohort::scheduler
