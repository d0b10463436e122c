#include "services/scheduler/cron/trigger.h"

#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::scheduler {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int year, int month, int day, int hour, int minute, int second = 0) {
  return absl::FromCivil(absl::CivilSecond(year, month, day, hour, minute, second),
                         absl::UTCTimeZone());
}

TEST(NextIntervalSlotAfter, ReturnsTheNextMultipleOfTheIntervalSinceTheEpoch) {
  EXPECT_EQ(NextIntervalSlotAfter(Utc(2024, 5, 1, 10, 20), absl::Hours(1)), Utc(2024, 5, 1, 11, 0));
  EXPECT_EQ(NextIntervalSlotAfter(Utc(2024, 5, 1, 11, 0), absl::Hours(1)), Utc(2024, 5, 1, 12, 0));
  EXPECT_EQ(NextIntervalSlotAfter(Utc(2024, 5, 1, 11, 0) - absl::Nanoseconds(1), absl::Hours(1)),
            Utc(2024, 5, 1, 11, 0));
  // 7 s slots stay on the epoch's grid whatever the caller's clock says.
  const absl::Time next = NextIntervalSlotAfter(Utc(2024, 5, 1, 10, 20, 3), absl::Seconds(7));
  EXPECT_EQ((next - absl::UnixEpoch()) % absl::Seconds(7), absl::ZeroDuration());
  EXPECT_GT(next, Utc(2024, 5, 1, 10, 20, 3));
  EXPECT_LE(next, Utc(2024, 5, 1, 10, 20, 10));
  EXPECT_EQ(
      NextIntervalSlotAfter(absl::UnixEpoch() + absl::Milliseconds(600), absl::Milliseconds(250)),
      absl::UnixEpoch() + absl::Milliseconds(750));
}

TEST(NextIntervalSlotAfter, IsExactBeforeTheEpoch) {
  EXPECT_EQ(NextIntervalSlotAfter(absl::UnixEpoch() - absl::Minutes(90), absl::Hours(1)),
            absl::UnixEpoch() - absl::Hours(1));
  EXPECT_EQ(NextIntervalSlotAfter(absl::UnixEpoch() - absl::Hours(1), absl::Hours(1)),
            absl::UnixEpoch());
  EXPECT_EQ(NextIntervalSlotAfter(absl::UnixEpoch(), absl::Hours(1)),
            absl::UnixEpoch() + absl::Hours(1));
}

TEST(NextIntervalSlotAfter, ReturnsInfiniteFutureForNonPositiveIntervalsAndInfiniteTimes) {
  const absl::Time t = Utc(2024, 5, 1, 10, 20);
  EXPECT_EQ(NextIntervalSlotAfter(t, absl::ZeroDuration()), absl::InfiniteFuture());
  EXPECT_EQ(NextIntervalSlotAfter(t, -absl::Seconds(1)), absl::InfiniteFuture());
  EXPECT_EQ(NextIntervalSlotAfter(t, absl::InfiniteDuration()), absl::InfiniteFuture());
  EXPECT_EQ(NextIntervalSlotAfter(absl::InfiniteFuture(), absl::Seconds(1)),
            absl::InfiniteFuture());
}

TEST(Trigger, IntervalMustBePositiveAndFinite) {
  for (absl::Duration bad : {absl::ZeroDuration(), -absl::Seconds(5), absl::InfiniteDuration()}) {
    absl::StatusOr<Trigger> trigger = Trigger::Interval(bad);
    EXPECT_EQ(trigger.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(trigger.status().message(), HasSubstr("it must be positive and finite"));
  }
  absl::StatusOr<Trigger> zero = Trigger::Interval(absl::ZeroDuration());
  EXPECT_EQ(zero.status().message(), "interval 0 is invalid: it must be positive and finite");
}

TEST(Trigger, IntervalTriggerStepsThroughIntervalSlots) {
  absl::StatusOr<Trigger> trigger = Trigger::Interval(absl::Minutes(15));
  ASSERT_TRUE(trigger.ok()) << trigger.status();
  EXPECT_EQ(trigger->NextAfter(Utc(2024, 5, 1, 10, 20)), Utc(2024, 5, 1, 10, 30));
  EXPECT_EQ(trigger->TypicalSpacing(), absl::Minutes(15));
}

TEST(NextIntervalSlotAfter, SaturatesToInfiniteFutureInsteadOfOverflowing) {
  // More slots since the epoch than an int64 counts: the quotient saturates, and the
  // next slot must not wrap to a time at or before `after`.
  const absl::Time far = absl::UnixEpoch() + absl::Seconds(std::numeric_limits<int64_t>::max() / 2);
  const absl::Time next = NextIntervalSlotAfter(far, absl::Nanoseconds(1));
  EXPECT_GT(next, far);
  const absl::Time last = absl::UnixEpoch() + absl::Seconds(std::numeric_limits<int64_t>::max() - 1);
  EXPECT_EQ(NextIntervalSlotAfter(last, absl::Hours(24 * 365 * 100)), absl::InfiniteFuture());
  const absl::Time first = absl::UnixEpoch() - absl::Seconds(std::numeric_limits<int64_t>::max() - 1);
  EXPECT_GT(NextIntervalSlotAfter(first, absl::Nanoseconds(3)), first);
}

TEST(Trigger, AHugeIntervalHasItsFirstSlotFarAheadNotInThePast) {
  absl::StatusOr<Trigger> trigger = Trigger::Interval(absl::Seconds(1'000'000'000'000));
  ASSERT_TRUE(trigger.ok()) << trigger.status();
  const absl::Time now = Utc(2024, 5, 1, 10, 20);
  EXPECT_EQ(trigger->NextAfter(now), absl::UnixEpoch() + absl::Seconds(1'000'000'000'000));
  EXPECT_EQ(trigger->NextAfter(trigger->NextAfter(now)), absl::UnixEpoch() + absl::Seconds(2'000'000'000'000));
}

TEST(Trigger, CronTriggerUsesItsTimeZone) {
  absl::StatusOr<CronExpression> cron = CronExpression::Parse("0 9 * * *");
  absl::StatusOr<absl::TimeZone> tokyo = LoadCronTimeZone("Asia/Tokyo");
  ASSERT_TRUE(cron.ok() && tokyo.ok());
  const Trigger trigger = Trigger::Cron(*cron, *tokyo);
  EXPECT_EQ(trigger.NextAfter(Utc(2024, 5, 1, 12, 0)), Utc(2024, 5, 2, 0, 0));  // 09:00 JST
  EXPECT_EQ(trigger.TypicalSpacing(), absl::Minutes(1));
}

}  // namespace
}  // namespace cohort::scheduler
