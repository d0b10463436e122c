#include "services/broker/job_policy.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/random/random.h"
#include "libs/common/proto_time.h"
#include "libs/common/wire_time.h"

namespace cohort::broker {

using common::FromProto;

std::int32_t MaxAttempts(const cohort::v1::JobSpec& spec) { return std::max(1, spec.max_attempts()); }

std::int32_t AttemptsUsed(const cohort::v1::Job& job) { return std::max(0, job.attempt() - job.attempt_base()); }

bool HasAttemptsLeft(const cohort::v1::Job& job) { return AttemptsUsed(job) < MaxAttempts(job.spec()); }

absl::Duration Bounded(absl::Duration d) { return std::clamp(d, absl::ZeroDuration(), common::kMaxWireDuration); }

absl::Duration Backoff(const cohort::v1::JobSpec& spec, std::int32_t attempt) {
  const auto& b = spec.backoff();
  absl::Duration initial = b.has_initial() ? Bounded(FromProto(b.initial())) : absl::Seconds(1);
  double multiplier = b.multiplier() >= 1 ? b.multiplier() : 2.0;  // false for NaN too
  absl::Duration cap = b.has_max() ? Bounded(FromProto(b.max())) : absl::Minutes(5);
  // absl::Duration saturates to infinity instead of overflowing; Bounded() brings it back.
  absl::Duration d = std::min(cap, Bounded(initial * std::pow(multiplier, std::max(0, attempt - 1))));
  const double jitter = std::isfinite(b.jitter()) ? std::clamp(b.jitter(), 0.0, 1.0) : 0.0;
  if (jitter > 0) {
    static absl::BitGen gen;
    d *= absl::Uniform(gen, 1.0 - jitter, 1.0 + jitter);
  }
  return Bounded(d);
}

bool IsPermanent(const cohort::v1::Error& e) {
  return e.code() == "not_allowed" || e.code() == "unknown_kind" || e.code() == "spawn_failed";
}

cohort::v1::Error MakeError(std::string code, std::string message) {
  cohort::v1::Error e;
  e.set_code(std::move(code));
  e.set_message(std::move(message));
  return e;
}

}  // namespace cohort::broker
