#include "libs/common/wire_time.h"

#include <algorithm>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cohort::common {
namespace {

// timestamp.proto's range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr std::int64_t kMinTimestampSeconds = -62'135'596'800;
constexpr std::int64_t kMaxTimestampSeconds = 253'402'300'799;
// duration.proto's range: about ±10,000 years.
constexpr std::int64_t kMaxDurationSeconds = 315'576'000'000;

}  // namespace

absl::StatusOr<absl::Duration> DurationFromWire(const google::protobuf::Duration& d, absl::string_view field,
                                                absl::Duration max) {
  const std::int64_t s = d.seconds();
  const std::int32_t n = d.nanos();
  if (n <= -1'000'000'000 || n >= 1'000'000'000 || (s > 0 && n < 0) || (s < 0 && n > 0) ||
      s > kMaxDurationSeconds || s < -kMaxDurationSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(field, " {seconds: ", s, ", nanos: ", n,
                                                   "} is not a valid Duration: nanos must be in "
                                                   "0..999999999 with the sign of seconds"));
  }
  if (s < 0 || n < 0) return absl::InvalidArgumentError(absl::StrCat(field, " must not be negative"));
  const absl::Duration out = absl::Seconds(s) + absl::Nanoseconds(n);
  if (out > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", s, "s: the limit is ", absl::ToInt64Seconds(max), "s"));
  }
  return out;
}

absl::StatusOr<absl::Time> TimeFromWire(const google::protobuf::Timestamp& t, absl::string_view field) {
  if (t.nanos() < 0 || t.nanos() >= 1'000'000'000 || t.seconds() < kMinTimestampSeconds ||
      t.seconds() > kMaxTimestampSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(field, " {seconds: ", t.seconds(), ", nanos: ", t.nanos(),
                                                   "} is not a valid Timestamp: use years 1..9999 and "
                                                   "nanos in 0..999999999"));
  }
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::chrono::nanoseconds ToChronoSaturated(absl::Duration d) {
  // absl::ToChronoNanoseconds saturates infinite durations and finite ones out of range.
  return absl::ToChronoNanoseconds(d);
}

absl::Duration ClampedFromProto(const google::protobuf::Duration& d, absl::Duration max) {
  // Both parts fit an absl::Duration (int64 seconds, |nanos| < 2^31): the sum is exact.
  const absl::Duration exact = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return std::clamp(exact, absl::ZeroDuration(), max);
}

}  // namespace cohort::common
