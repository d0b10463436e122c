#include "services/scheduler/cron/catch_up.h"

#include <string_view>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

absl::Time Utc(int year, int month, int day, int hour, int minute) {
  return absl::FromCivil(absl::CivilMinute(year, month, day, hour, minute), absl::UTCTimeZone());
}

Trigger Hourly() { return *Trigger::Interval(absl::Hours(1)); }

Trigger Cron(std::string_view expression, std::string_view zone = "") {
  return Trigger::Cron(*CronExpression::Parse(expression), *LoadCronTimeZone(zone));
}

// run_all_limit for the policies that ignore it.
constexpr int kNoLimit = 0;

// In most tests: fired through 10:00, now 13:30; 11:00, 12:00 and 13:00 were missed.
TEST(PlanCatchUp, SkipMissedFiresNothingAndArmsTheNextSlot) {
  const CatchUpPlan plan = PlanCatchUp(Hourly(), Utc(2024, 5, 1, 10, 0), Utc(2024, 5, 1, 13, 30),
                                       CatchUpPolicy::kSkipMissed, kNoLimit);
  EXPECT_THAT(plan.fire, IsEmpty());
  EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
  EXPECT_TRUE(plan.dropped);
}

TEST(PlanCatchUp, RunOnceFiresTheMostRecentMissedSlot) {
  const CatchUpPlan plan = PlanCatchUp(Hourly(), Utc(2024, 5, 1, 10, 0), Utc(2024, 5, 1, 13, 30),
                                       CatchUpPolicy::kRunOnce, kNoLimit);
  EXPECT_THAT(plan.fire, ElementsAre(Utc(2024, 5, 1, 13, 0)));
  EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
  EXPECT_TRUE(plan.dropped);
}

TEST(PlanCatchUp, RunAllFiresTheMostRecentSlotsUpToTheLimitOldestFirst) {
  const absl::Time fired_through = Utc(2024, 5, 1, 10, 0);
  const absl::Time now = Utc(2024, 5, 1, 13, 30);
  CatchUpPlan plan = PlanCatchUp(Hourly(), fired_through, now, CatchUpPolicy::kRunAll, 2);
  EXPECT_THAT(plan.fire, ElementsAre(Utc(2024, 5, 1, 12, 0), Utc(2024, 5, 1, 13, 0)));
  EXPECT_TRUE(plan.dropped);

  plan = PlanCatchUp(Hourly(), fired_through, now, CatchUpPolicy::kRunAll, 3);
  EXPECT_THAT(plan.fire,
              ElementsAre(Utc(2024, 5, 1, 11, 0), Utc(2024, 5, 1, 12, 0), Utc(2024, 5, 1, 13, 0)));
  EXPECT_FALSE(plan.dropped);

  plan = PlanCatchUp(Hourly(), fired_through, now, CatchUpPolicy::kRunAll, 100);
  EXPECT_EQ(plan.fire.size(), 3u);
  EXPECT_FALSE(plan.dropped);
  EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
}

TEST(PlanCatchUp, NothingMissedMeansNothingToFireWhateverThePolicy) {
  for (CatchUpPolicy policy :
       {CatchUpPolicy::kSkipMissed, CatchUpPolicy::kRunOnce, CatchUpPolicy::kRunAll}) {
    const CatchUpPlan plan =
        PlanCatchUp(Hourly(), Utc(2024, 5, 1, 13, 0), Utc(2024, 5, 1, 13, 30), policy, 10);
    EXPECT_THAT(plan.fire, IsEmpty());
    EXPECT_FALSE(plan.dropped);
    EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
  }
}

TEST(PlanCatchUp, ASlotDueExactlyNowIsMissedNotNext) {
  const CatchUpPlan plan = PlanCatchUp(Hourly(), Utc(2024, 5, 1, 12, 0), Utc(2024, 5, 1, 13, 0),
                                       CatchUpPolicy::kRunAll, 10);
  EXPECT_THAT(plan.fire, ElementsAre(Utc(2024, 5, 1, 13, 0)));
  EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
}

TEST(PlanCatchUp, AClockSteppedBackNeverRefiresASlot) {
  // The last fire was 13:00 but the clock now reads 11:30.
  const CatchUpPlan plan = PlanCatchUp(Hourly(), Utc(2024, 5, 1, 13, 0), Utc(2024, 5, 1, 11, 30),
                                       CatchUpPolicy::kRunAll, 10);
  EXPECT_THAT(plan.fire, IsEmpty());
  EXPECT_EQ(plan.next_slot, Utc(2024, 5, 1, 14, 0));
}

TEST(PlanCatchUp, AYearOfEveryMinuteIsCappedAndCheap) {
  const Trigger every_minute = Cron("* * * * *");
  const absl::Time fired_through = Utc(2023, 5, 1, 0, 0);
  const absl::Time now = Utc(2024, 5, 1, 0, 0);

  CatchUpPlan plan = PlanCatchUp(every_minute, fired_through, now, CatchUpPolicy::kRunAll, 1 << 30);
  ASSERT_EQ(plan.fire.size(), static_cast<size_t>(kMaxCatchUpSlots));
  EXPECT_EQ(plan.fire.front(), now - absl::Minutes(kMaxCatchUpSlots - 1));
  EXPECT_EQ(plan.fire.back(), now);
  for (size_t i = 1; i < plan.fire.size(); ++i) {
    ASSERT_EQ(plan.fire[i] - plan.fire[i - 1], absl::Minutes(1)) << i;
  }
  EXPECT_TRUE(plan.dropped);
  EXPECT_EQ(plan.next_slot, now + absl::Minutes(1));

  plan = PlanCatchUp(every_minute, fired_through, now, CatchUpPolicy::kRunOnce, kNoLimit);
  EXPECT_THAT(plan.fire, ElementsAre(now));

  // A limit below 1 still fires one slot.
  plan = PlanCatchUp(every_minute, fired_through, now, CatchUpPolicy::kRunAll, 0);
  EXPECT_THAT(plan.fire, ElementsAre(now));
}

TEST(PlanCatchUp, FindsTheMostRecentSlotsOfASparseScheduleFarBack) {
  // Yearly on the 1st of January, last fired in 2015: three of the nine missed slots.
  const CatchUpPlan plan = PlanCatchUp(Cron("0 0 1 1 *"), Utc(2015, 1, 1, 0, 0),
                                       Utc(2024, 6, 1, 0, 0), CatchUpPolicy::kRunAll, 3);
  EXPECT_THAT(plan.fire,
              ElementsAre(Utc(2022, 1, 1, 0, 0), Utc(2023, 1, 1, 0, 0), Utc(2024, 1, 1, 0, 0)));
  EXPECT_TRUE(plan.dropped);
  EXPECT_EQ(plan.next_slot, Utc(2025, 1, 1, 0, 0));
}

TEST(PlanCatchUp, AcrossAFallBackARepeatedSlotIsCaughtUpOnce) {
  // Down from 2024-11-02 12:00 UTC to 2024-11-04 12:00 UTC in New York.
  const CatchUpPlan plan =
      PlanCatchUp(Cron("30 1 * * *", "America/New_York"), Utc(2024, 11, 2, 12, 0),
                  Utc(2024, 11, 4, 12, 0), CatchUpPolicy::kRunAll, 10);
  // 01:30 EDT on the 3rd, 01:30 EST on the 4th.
  EXPECT_THAT(plan.fire, ElementsAre(Utc(2024, 11, 3, 5, 30), Utc(2024, 11, 4, 6, 30)));
  EXPECT_FALSE(plan.dropped);
}

TEST(PlanCatchUp, ANeverFiringTriggerHasNothingToFireAndNoNextSlot) {
  const CatchUpPlan plan = PlanCatchUp(Cron("0 0 30 2 *"), Utc(2020, 1, 1, 0, 0),
                                       Utc(2024, 1, 1, 0, 0), CatchUpPolicy::kRunAll, 10);
  EXPECT_THAT(plan.fire, IsEmpty());
  EXPECT_FALSE(plan.dropped);
  EXPECT_EQ(plan.next_slot, absl::InfiniteFuture());
}

TEST(PlanCatchUp, AnInfinitelyOldWatermarkLooksBackOnlyAsFarAsTheLookback) {
  const absl::Time now = Utc(2024, 5, 1, 0, 30);
  const CatchUpPlan plan =
      PlanCatchUp(Hourly(), absl::InfinitePast(), now, CatchUpPolicy::kRunAll, 2);
  EXPECT_THAT(plan.fire, ElementsAre(Utc(2024, 4, 30, 23, 0), Utc(2024, 5, 1, 0, 0)));
  EXPECT_TRUE(plan.dropped);
}

}  // namespace
}  // namespace cohort::scheduler
