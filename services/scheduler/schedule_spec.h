#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"
#include "protos/cohort/v1/scheduler.pb.h"
#include "services/scheduler/cron/catch_up.h"
#include "services/scheduler/cron/trigger.h"

namespace cohort::scheduler {

// The label every job a schedule submits carries, with the schedule's id as value.
inline constexpr char kScheduleLabel[] = "cohort.schedule";

// A schedule id is [a-z0-9._-]{1,64}; INVALID_ARGUMENT otherwise.
absl::Status ValidateScheduleId(std::string_view id);

// Checks every rule of ScheduleSpec that needs no broker (scheduler.proto) and returns
// its Trigger. INVALID_ARGUMENT with a message naming the field and the rule. The job
// template itself is checked by the broker (Submit validate_only on JobForSlot).
absl::StatusOr<Trigger> ValidateScheduleSpec(const cohort::v1::ScheduleSpec& spec, absl::Duration min_interval);

// The Trigger of a spec that passed ValidateScheduleSpec.
absl::StatusOr<Trigger> TriggerOf(const cohort::v1::ScheduleSpec& spec);

CatchUpPolicy CatchUpPolicyOf(const cohort::v1::ScheduleSpec& spec);

// The job submitted for `slot` (or for a TriggerSchedule call, without one): the
// template, labelled with the schedule, and for a slot the idempotency key
// "cohort.schedule/<id>/<slot, RFC 3339 UTC>" that makes a slot fire at most once.
cohort::v1::JobSpec JobForSlot(const std::string& schedule_id, const cohort::v1::ScheduleSpec& spec,
                               std::optional<absl::Time> slot);

}  // namespace cohort::scheduler
