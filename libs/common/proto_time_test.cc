#include "libs/common/proto_time.h"

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

TEST(ProtoDuration, RoundTripsIncludingNegativeOnesWithNanosOfTheSecondsSign) {
  for (absl::Duration d : {absl::Milliseconds(1500), -absl::Milliseconds(1500), absl::ZeroDuration(),
                           absl::Nanoseconds(1), -absl::Nanoseconds(1)}) {
    const google::protobuf::Duration p = ToProto(d);
    EXPECT_EQ(FromProto(p), d);
    EXPECT_TRUE((p.seconds() >= 0 && p.nanos() >= 0) || (p.seconds() <= 0 && p.nanos() <= 0));
  }
}

TEST(ProtoTimestamp, RoundTripsAndKeepsNanosNonNegativeBefore1970) {
  for (absl::Time t : {absl::FromUnixMillis(1'800'000'000'123), absl::FromUnixMillis(-1'500), absl::UnixEpoch()}) {
    const google::protobuf::Timestamp p = ToProto(t);
    EXPECT_EQ(FromProto(p), t);
    EXPECT_GE(p.nanos(), 0);
    EXPECT_LT(p.nanos(), 1'000'000'000);
  }
}

}  // namespace
}  // namespace cohort::common
