#pragma once

#include <chrono>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace cohort::common {

// The longest duration Cohort takes from the wire (a timeout, delay, backoff, TTL,
// interval or retention): 100 years. Far beyond any real use, and far inside what a
// nanosecond count (±292 years) and a steady-clock time point can hold, so nothing
// checked against it can overflow when it becomes a timer.
inline constexpr absl::Duration kMaxWireDuration = absl::Hours(24 * 365 * 100);

// Checks a google.protobuf.Duration from a request and converts it exactly.
// INVALID_ARGUMENT naming `field` unless it is well formed (nanos in ±999,999,999 with
// the sign of seconds), not negative, and at most `max`. The message quotes only the
// numbers, never caller text.
absl::StatusOr<absl::Duration> DurationFromWire(const google::protobuf::Duration& d, absl::string_view field,
                                                absl::Duration max = kMaxWireDuration);

// Checks a google.protobuf.Timestamp from a request (nanos in [0, 1e9), seconds within
// 0001-01-01 .. 9999-12-31, as timestamp.proto defines) and converts it exactly.
// INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<absl::Time> TimeFromWire(const google::protobuf::Timestamp& t, absl::string_view field);

// absl::Duration -> std::chrono::nanoseconds, saturating at the representable range
// (an infinite or huge duration becomes the largest count, never a wrapped negative).
std::chrono::nanoseconds ToChronoSaturated(absl::Duration d);

// `now + d` for a steady-clock style time point, saturating at its maximum instead of
// overflowing: a timer that far ahead simply never fires.
template <typename TimePoint>
TimePoint AddSaturated(TimePoint now, std::chrono::nanoseconds d) {
  using Rep = typename TimePoint::duration::rep;
  const Rep base = now.time_since_epoch().count();
  const Rep add = std::chrono::duration_cast<typename TimePoint::duration>(d).count();
  Rep sum;
  if (__builtin_add_overflow(base, add, &sum)) sum = add > 0 ? TimePoint::duration::max().count()
                                                             : TimePoint::duration::min().count();
  return TimePoint(typename TimePoint::duration(sum));
}

// `now + d` for a timer: the saturating conversion and sum above in one step (what
// every "arm a timer for this absl::Duration" needs). A negative d gives a time point
// before now, which a loop's timer treats as due.
template <typename TimePoint>
TimePoint AddSaturated(TimePoint now, absl::Duration d) {
  return AddSaturated(now, ToChronoSaturated(d));
}

// A Duration from a trusted peer (the broker's lease or heartbeat interval, a job's
// timeout relayed to the executor) as a delay: converted exactly, then clamped to
// [0, max], so a negative or absurd value can neither fire a timer at once by wrapping
// nor overflow `now + d`. For caller input that must be refused instead, use
// DurationFromWire.
absl::Duration ClampedFromProto(const google::protobuf::Duration& d, absl::Duration max = kMaxWireDuration);

}  // namespace cohort::common
