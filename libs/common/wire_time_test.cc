#include "libs/common/wire_time.h"

#include <chrono>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace cohort::common {
namespace {

google::protobuf::Duration D(std::int64_t s, std::int32_t n) {
  google::protobuf::Duration d;
  d.set_seconds(s);
  d.set_nanos(n);
  return d;
}

google::protobuf::Timestamp T(std::int64_t s, std::int32_t n) {
  google::protobuf::Timestamp t;
  t.set_seconds(s);
  t.set_nanos(n);
  return t;
}

TEST(DurationFromWire, ConvertsAWellFormedDurationExactly) {
  auto d = DurationFromWire(D(3, 500'000'000), "timeout");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, absl::Milliseconds(3500));
}

TEST(DurationFromWire, RejectsNanosOutOfRangeOrAgainstTheSignOfSeconds) {
  for (auto d : {D(0, 2'000'000'000), D(1, -1), D(-1, 1), D(0, -1'000'000'000)}) {
    EXPECT_EQ(DurationFromWire(d, "delay").status().code(), absl::StatusCode::kInvalidArgument)
        << d.ShortDebugString();
  }
}

TEST(DurationFromWire, RejectsNegativeDurations) {
  auto d = DurationFromWire(D(-5, 0), "timeout");
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("timeout must not be negative"), absl::string_view::npos);
}

TEST(DurationFromWire, RejectsDurationsOverTheLimitThatWouldOverflowATimer) {
  EXPECT_EQ(DurationFromWire(D(9'300'000'000, 0), "timeout").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DurationFromWire(D(std::numeric_limits<std::int64_t>::max(), 0), "timeout").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DurationFromWire(D(61, 0), "interval", absl::Minutes(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DurationFromWire(D(60, 0), "interval", absl::Minutes(1)).ok());
}

TEST(TimeFromWire, AcceptsTheProtobufRangeAndRejectsBeyondIt) {
  EXPECT_TRUE(TimeFromWire(T(0, 0), "run_at").ok());
  EXPECT_TRUE(TimeFromWire(T(253'402'300'799, 999'999'999), "run_at").ok());
  for (auto t : {T(std::numeric_limits<std::int64_t>::min(), 0), T(std::numeric_limits<std::int64_t>::max(), 0),
                 T(0, -1), T(0, 1'000'000'000)}) {
    auto r = TimeFromWire(t, "deadline");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << t.ShortDebugString();
    EXPECT_LT(r.status().message().size(), 200u);
  }
}

TEST(ToChronoSaturated, SaturatesInsteadOfWrapping) {
  EXPECT_EQ(ToChronoSaturated(absl::InfiniteDuration()), std::chrono::nanoseconds::max());
  EXPECT_EQ(ToChronoSaturated(absl::Hours(24 * 365 * 1000)), std::chrono::nanoseconds::max());
  EXPECT_EQ(ToChronoSaturated(absl::Seconds(2)), std::chrono::seconds(2));
}

TEST(AddSaturated, ClampsAtTheLatestTimePoint) {
  using TP = std::chrono::time_point<std::chrono::steady_clock, std::chrono::nanoseconds>;
  const TP now(std::chrono::hours(1));
  EXPECT_EQ(AddSaturated(now, std::chrono::nanoseconds::max()), TP::max());
  EXPECT_EQ(AddSaturated(now, std::chrono::seconds(1)), now + std::chrono::seconds(1));
}

TEST(AddSaturated, TakesAnAbslDurationAndSaturatesAnInfiniteOne) {
  using TP = std::chrono::time_point<std::chrono::steady_clock, std::chrono::nanoseconds>;
  const TP now(std::chrono::hours(1));
  EXPECT_EQ(AddSaturated(now, absl::InfiniteDuration()), TP::max());
  EXPECT_EQ(AddSaturated(now, absl::Hours(24 * 365 * 8000)), TP::max());
  EXPECT_EQ(AddSaturated(now, absl::Milliseconds(5)), now + std::chrono::milliseconds(5));
}

TEST(ClampedFromProto, ConvertsExactlyAndClampsNegativeAndHugeValues) {
  google::protobuf::Duration d;
  d.set_seconds(3);
  d.set_nanos(250'000'000);
  EXPECT_EQ(ClampedFromProto(d), absl::Milliseconds(3'250));
  d.set_seconds(-1);
  d.set_nanos(0);
  EXPECT_EQ(ClampedFromProto(d), absl::ZeroDuration());
  d.set_seconds(10'000'000'000'000);  // 317,000 years
  EXPECT_EQ(ClampedFromProto(d), kMaxWireDuration);
  d.set_seconds(std::numeric_limits<int64_t>::max());
  d.set_nanos(999'999'999);
  EXPECT_EQ(ClampedFromProto(d, absl::Hours(1)), absl::Hours(1));
}

}  // namespace
}  // namespace cohort::common
