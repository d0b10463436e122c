#include "services/executor/prefetch_window.h"

#include <chrono>

#include "gtest/gtest.h"

namespace cohort::executor {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

PrefetchWindowOptions Adaptive(int capacity, int max) {
  PrefetchWindowOptions o;
  o.capacity = capacity;
  o.max = max;
  o.adaptive = true;
  o.horizon = milliseconds(5);
  return o;
}

TEST(PrefetchWindow, StartsClosedAndGrowsByDoublingToTheBoundForShortJobs) {
  PrefetchWindow w(Adaptive(4, 256));
  EXPECT_EQ(w.size(), 0);  // nothing learned: take only what can start
  std::vector<int> sizes;
  for (int i = 0; i < 12; ++i) {
    w.Finished(microseconds(10));  // 4 slots * 5 ms / 10 us = 2000 wanted
    sizes.push_back(w.size());
  }
  EXPECT_EQ(sizes, (std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256, 256, 256, 256}));
}

TEST(PrefetchWindow, HoldsAboutTheHorizonsWorthOfJobs) {
  PrefetchWindow w(Adaptive(4, 256));
  for (int i = 0; i < 20; ++i) w.Finished(milliseconds(1));
  EXPECT_EQ(w.size(), 20);  // 4 slots finish 20 jobs of 1 ms in 5 ms
  PrefetchWindow longer(Adaptive(4, 256));
  for (int i = 0; i < 20; ++i) longer.Finished(milliseconds(10));
  EXPECT_EQ(longer.size(), 2);
}

TEST(PrefetchWindow, LongJobsGetNoPrefetch) {
  PrefetchWindow w(Adaptive(4, 256));
  for (int i = 0; i < 20; ++i) {
    w.Finished(milliseconds(200));
    EXPECT_EQ(w.size(), 0) << i;
  }
  EXPECT_EQ(w.mean(), milliseconds(200));
}

TEST(PrefetchWindow, ShrinksAtOnceWhenJobsGetLong) {
  PrefetchWindow w(Adaptive(4, 256));
  for (int i = 0; i < 20; ++i) w.Finished(microseconds(10));
  ASSERT_EQ(w.size(), 256);
  w.Finished(milliseconds(200));  // the mean jumps to ~50 ms: 4 * 5 / 50 < 1
  EXPECT_EQ(w.size(), 0);
}

TEST(PrefetchWindow, OneFastOutlierAmongLongJobsOpensItByOneAtMost) {
  PrefetchWindow w(Adaptive(4, 256));
  w.Finished(microseconds(1));
  EXPECT_EQ(w.size(), 1);
  w.Finished(milliseconds(200));
  EXPECT_EQ(w.size(), 0);
}

TEST(PrefetchWindow, NeverExceedsItsBound) {
  for (int max : {0, 1, 3, 64}) {
    PrefetchWindow w(Adaptive(8, max));
    for (int i = 0; i < 50; ++i) {
      w.Finished(i % 7 == 0 ? milliseconds(3) : runtime::Duration::zero());
      EXPECT_GE(w.size(), 0);
      EXPECT_LE(w.size(), max) << "max " << max << " after " << i;
    }
  }
  PrefetchWindow huge(Adaptive(10'000, 10'000));  // capacity * horizon / 1 ns overflows an int
  huge.Finished(std::chrono::nanoseconds(1));
  EXPECT_EQ(huge.size(), 1);
  for (int i = 0; i < 20; ++i) huge.Finished(std::chrono::nanoseconds(1));
  EXPECT_EQ(huge.size(), 10'000);
}

TEST(PrefetchWindow, ForgetStartsOverClosed) {
  PrefetchWindow w(Adaptive(4, 64));
  for (int i = 0; i < 10; ++i) w.Finished(microseconds(10));
  ASSERT_EQ(w.size(), 64);
  w.Forget();
  EXPECT_EQ(w.size(), 0);
  EXPECT_FALSE(w.mean().has_value());
  w.Finished(milliseconds(200));  // the new regime alone decides
  EXPECT_EQ(w.size(), 0);
}

TEST(PrefetchWindow, AFixedWindowIgnoresDurations) {
  PrefetchWindowOptions o = Adaptive(4, 3);
  o.adaptive = false;
  PrefetchWindow w(o);
  EXPECT_EQ(w.size(), 3);
  w.Finished(std::chrono::seconds(10));
  w.Forget();
  EXPECT_EQ(w.size(), 3);
}

}  // namespace
}  // namespace cohort::executor
