#include "libs/common/log_rate_limit.h"

#include "gtest/gtest.h"

namespace cohort::log {
namespace {

const absl::Time kStart = absl::FromUnixSeconds(1'000);

TEST(RateLimiter, WritesTheFirstLineAndCountsTheRestOfTheSecond) {
  RateLimiter limit;
  EXPECT_TRUE(limit.Admit(kStart).write);
  for (int i = 1; i <= 999; ++i) EXPECT_FALSE(limit.Admit(kStart + absl::Milliseconds(i)).write);
  RateLimiter::Verdict next = limit.Admit(kStart + absl::Seconds(1));
  EXPECT_TRUE(next.write);
  EXPECT_EQ(next.suppressed, 999);
}

TEST(RateLimiter, CountIsResetOnceReported) {
  RateLimiter limit;
  limit.Admit(kStart);
  limit.Admit(kStart);
  EXPECT_EQ(limit.Admit(kStart + absl::Seconds(2)).suppressed, 1);
  EXPECT_EQ(limit.Admit(kStart + absl::Seconds(4)).suppressed, 0);
}

TEST(RateLimiter, AFloodIsOneLinePerWindow) {
  RateLimiter limit;
  int written = 0;
  // 100 lines a second for 10 seconds.
  for (int i = 0; i < 1000; ++i) written += limit.Admit(kStart + absl::Milliseconds(10 * i)).write ? 1 : 0;
  EXPECT_EQ(written, 10);
}

TEST(RateLimiter, HonoursItsWindowAndBudget) {
  RateLimiter limit(absl::Seconds(10), 3);
  EXPECT_TRUE(limit.Admit(kStart).write);
  EXPECT_TRUE(limit.Admit(kStart + absl::Seconds(1)).write);
  EXPECT_TRUE(limit.Admit(kStart + absl::Seconds(2)).write);
  EXPECT_FALSE(limit.Admit(kStart + absl::Seconds(9)).write);
  EXPECT_TRUE(limit.Admit(kStart + absl::Seconds(10)).write);
}

TEST(RateLimiter, AClockGoingBackStartsANewWindow) {
  RateLimiter limit;
  EXPECT_TRUE(limit.Admit(kStart).write);
  EXPECT_TRUE(limit.Admit(kStart - absl::Seconds(5)).write);
}

}  // namespace
}  // namespace cohort::log
