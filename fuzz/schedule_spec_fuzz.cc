// CreateSchedule's validation as the scheduler runs it: the bytes of a ScheduleSpec,
// ValidateScheduleSpec (schedule_spec.h), and for a spec it accepts, the Trigger's next
// slots from a few starting points (the epoch, now, the far future) and the job a slot
// submits. Every slot must be strictly later than the one before, and an accepted
// interval must be a valid Duration.
#include <cstddef>
#include <cstdint>

#include "absl/time/time.h"
#include "protos/cohort/v1/scheduler.pb.h"
#include "services/scheduler/schedule_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cohort::v1::ScheduleSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  auto trigger = cohort::scheduler::ValidateScheduleSpec(spec, absl::Seconds(1));
  if (!trigger.ok()) return 0;
  // An accepted interval is a valid google.protobuf.Duration (|nanos| < 1e9).
  if (spec.has_interval() && (spec.interval().nanos() <= -1'000'000'000 || spec.interval().nanos() >= 1'000'000'000)) {
    __builtin_trap();
  }
  const absl::Time starts[] = {absl::UnixEpoch(), absl::FromUnixSeconds(1'800'000'000),
                               absl::FromUnixSeconds(253'402'300'799)};  // 9999-12-31
  for (absl::Time t : starts) {
    for (int i = 0; i < 3 && t != absl::InfiniteFuture(); ++i) {
      const absl::Time next = trigger->NextAfter(t);
      if (next <= t) __builtin_trap();
      cohort::v1::JobSpec job = cohort::scheduler::JobForSlot("fuzz", spec, next);
      if (!job.labels().contains(cohort::scheduler::kScheduleLabel)) __builtin_trap();
      t = next;
    }
  }
  return 0;
}
