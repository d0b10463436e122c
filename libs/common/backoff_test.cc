#include "libs/common/backoff.h"

#include <set>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

TEST(Backoff, WithoutJitterDoublesFromInitialUpToMax) {
  Backoff b({.initial = absl::Milliseconds(100), .max = absl::Seconds(1), .jitter = 0});
  EXPECT_EQ(b.Next(), absl::Milliseconds(100));
  EXPECT_EQ(b.Next(), absl::Milliseconds(200));
  EXPECT_EQ(b.Next(), absl::Milliseconds(400));
  EXPECT_EQ(b.Next(), absl::Milliseconds(800));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.Next(), absl::Seconds(1));
  EXPECT_EQ(b.attempts(), 6);
}

TEST(Backoff, ResetStartsAgainFromInitial) {
  Backoff b({.initial = absl::Milliseconds(50), .max = absl::Seconds(5), .jitter = 0});
  for (int i = 0; i < 10; ++i) b.Next();
  b.Reset();
  EXPECT_EQ(b.attempts(), 0);
  EXPECT_EQ(b.Peek(), absl::Milliseconds(50));
  EXPECT_EQ(b.Next(), absl::Milliseconds(50));
}

TEST(Backoff, JitterOnlyShortensADelayAndByAtMostItsFraction) {
  Backoff b({.initial = absl::Seconds(1), .max = absl::Seconds(1), .jitter = 0.25});
  std::set<absl::Duration> seen;
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration d = b.Next();
    EXPECT_LE(d, absl::Seconds(1));
    EXPECT_GE(d, absl::Milliseconds(750));
    seen.insert(d);
  }
  EXPECT_GT(seen.size(), 100u);  // spread, not one value
}

TEST(Backoff, AHugeAttemptCountSaturatesAtMaxInsteadOfOverflowing) {
  Backoff b({.initial = absl::Nanoseconds(1), .max = absl::Hours(1), .multiplier = 1e6, .jitter = 0});
  for (int i = 0; i < 10'000; ++i) EXPECT_LE(b.Next(), absl::Hours(1));
  EXPECT_EQ(b.Next(), absl::Hours(1));
}

TEST(Backoff, NonsenseOptionsAreClampedToAUsableBackoff) {
  Backoff b({.initial = absl::Seconds(-1), .max = absl::Seconds(-5), .multiplier = 0.1, .jitter = 7});
  EXPECT_EQ(b.Next(), absl::ZeroDuration());
  EXPECT_EQ(b.Next(), absl::ZeroDuration());
}

}  // namespace
}  // namespace cohort::common
