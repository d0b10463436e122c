#include "services/scheduler/schedule_spec.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/scheduler/cron/catch_up.h"

namespace cohort::scheduler {
namespace {

using ::testing::HasSubstr;

cohort::v1::ScheduleSpec Every(int64_t seconds, int32_t nanos = 0) {
  cohort::v1::ScheduleSpec spec;
  spec.mutable_job()->set_queue("q");
  spec.mutable_job()->set_kind("builtin.echo");
  spec.mutable_interval()->set_seconds(seconds);
  spec.mutable_interval()->set_nanos(nanos);
  return spec;
}

absl::Status Validate(const cohort::v1::ScheduleSpec& spec) {
  return ValidateScheduleSpec(spec, absl::Seconds(1)).status();
}

TEST(ValidateScheduleSpec, AcceptsIntervalsFromTheMinimumToAHundredYears) {
  EXPECT_TRUE(Validate(Every(1)).ok());
  EXPECT_TRUE(Validate(Every(absl::ToInt64Seconds(kMaxScheduleInterval))).ok());
}

TEST(ValidateScheduleSpec, RejectsAnIntervalOverAHundredYearsNamingTheField) {
  const absl::Status s = Validate(Every(1'000'000'000'000));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.interval"));
  EXPECT_EQ(Validate(Every(absl::ToInt64Seconds(kMaxScheduleInterval), 1)).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ValidateScheduleSpec, RejectsAMalformedIntervalDuration) {
  for (const cohort::v1::ScheduleSpec& spec :
       {Every(5, 2'000'000'000), Every(5, -1), Every(-5), Every(0, 1'000'000'000),
        Every(std::numeric_limits<int64_t>::max()), Every(std::numeric_limits<int64_t>::min())}) {
    const absl::Status s = Validate(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << spec.interval().ShortDebugString();
    EXPECT_THAT(s.message(), HasSubstr("spec.interval"));
  }
}

TEST(ValidateScheduleSpec, RejectsAnIntervalUnderTheConfiguredMinimum) {
  const absl::Status s = ValidateScheduleSpec(Every(0, 500'000'000), absl::Seconds(1)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("under the minimum"));
}

TEST(ValidateScheduleSpec, BoundsTheCatchUpLimit) {
  cohort::v1::ScheduleSpec spec = Every(60);
  spec.set_catch_up_policy(cohort::v1::CATCH_UP_POLICY_RUN_ALL);
  spec.set_catch_up_limit(kMaxCatchUpSlots);
  EXPECT_TRUE(Validate(spec).ok());
  for (int limit : {kMaxCatchUpSlots + 1, std::numeric_limits<int32_t>::max(), -1}) {
    spec.set_catch_up_limit(limit);
    const absl::Status s = Validate(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << limit;
    EXPECT_THAT(s.message(), HasSubstr("spec.catch_up_limit"));
  }
}

TEST(ValidateScheduleSpec, NamesTheCronFieldAtFaultAndQuotesABoundedPrefix) {
  cohort::v1::ScheduleSpec spec = Every(60);
  spec.mutable_cron()->set_expression("61 * * * *");
  absl::Status s = Validate(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.cron.expression"));

  spec.mutable_cron()->set_expression("0 9 * * *");
  spec.mutable_cron()->set_time_zone(std::string(100'000, 'A'));
  s = Validate(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("spec.cron.time_zone"));
  EXPECT_LT(s.message().size(), 256u);
}

TEST(ValidateScheduleSpec, RejectsACronThatCanNeverFire) {
  cohort::v1::ScheduleSpec spec = Every(60);
  for (const char* never : {"0 2 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 2 *"}) {
    spec.mutable_cron()->set_expression(never);
    absl::Status s = Validate(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << never;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("spec.cron.expression \"", never, "\" never fires")));
  }
  // Rare but real: the 29th of February.
  spec.mutable_cron()->set_expression("0 0 29 2 *");
  EXPECT_TRUE(Validate(spec).ok());
}

TEST(TriggerOf, RefusesAStoredIntervalNoLongerValid) {
  // A spec stored before the interval was range-checked: loading must not arm it.
  EXPECT_EQ(TriggerOf(Every(1'000'000'000'000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TriggerOf(Every(5, 2'000'000'000)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(TriggerOf(Every(60)).ok());
}

}  // namespace
}  // namespace cohort::scheduler
