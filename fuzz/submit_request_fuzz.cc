// Submit as the broker handles it: the bytes of a SubmitRequest, each spec validated
// (job_validation.h), then the whole batch through BrokerEngine::Submit on an
// in-memory store, so the conversions past validation (delay, run_at, deadline,
// backoff, timers) run too. Besides the sanitizers, three oracles: a batch the engine
// takes has only specs its validator accepts, and specs that job.proto calls
// well-formed (WellFormed below); a refused batch writes nothing.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/engine_harness.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/broker/job_validation.h"

namespace {

// A valid google.protobuf.Duration: |seconds| <= 10,000 years, |nanos| < 1e9, same sign.
bool WellFormed(const google::protobuf::Duration& d) {
  constexpr int64_t kMax = 315'576'000'000;
  if (d.seconds() < -kMax || d.seconds() > kMax || d.nanos() <= -1'000'000'000 || d.nanos() >= 1'000'000'000) {
    return false;
  }
  return !((d.seconds() > 0 && d.nanos() < 0) || (d.seconds() < 0 && d.nanos() > 0));
}

// A valid google.protobuf.Timestamp: years 0001..9999, nanos in [0, 1e9).
bool WellFormed(const google::protobuf::Timestamp& t) {
  return t.seconds() >= -62'135'596'800 && t.seconds() <= 253'402'300'799 && t.nanos() >= 0 &&
         t.nanos() < 1'000'000'000;
}

// What job.proto requires of every accepted spec, independently of the validator.
bool WellFormed(const cohort::v1::JobSpec& s) {
  if (s.has_delay() && !WellFormed(s.delay())) return false;
  if (s.has_timeout() && !WellFormed(s.timeout())) return false;
  if (s.has_result_ttl() && !WellFormed(s.result_ttl())) return false;
  if (s.has_run_at() && !WellFormed(s.run_at())) return false;
  if (s.has_deadline() && !WellFormed(s.deadline())) return false;
  if (s.has_backoff()) {
    const auto& b = s.backoff();
    if ((b.has_initial() && !WellFormed(b.initial())) || (b.has_max() && !WellFormed(b.max()))) return false;
    if (!std::isfinite(b.multiplier()) || !std::isfinite(b.jitter())) return false;
  }
  if (!cohort::v1::DependencyFailurePolicy_IsValid(s.on_dependency_failure())) return false;
  if (s.has_command() && s.kind() != "exec") return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cohort::v1::SubmitRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (request.jobs_size() > 64) return 0;  // the engine's batch cap is not what is fuzzed here
  const cohort::broker::SpecLimits limits;
  bool all_valid = true;
  bool all_well_formed = true;
  for (int i = 0; i < request.jobs_size(); ++i) {
    all_valid = cohort::broker::ValidateSpec(request.jobs(i), i, limits).ok() && all_valid;
    all_well_formed = WellFormed(request.jobs(i)) && all_well_formed;
  }
  std::vector<cohort::v1::JobSpec> specs(request.jobs().begin(), request.jobs().end());
  cohort::fuzz::EngineHarness harness;
  harness.Run([&](cohort::broker::BrokerEngine& e) -> cohort::runtime::Task<void> {
    auto ids = co_await e.Submit(specs, request.validate_only());
    cohort::v1::ListJobsRequest all;
    auto listed = co_await e.ListJobs(all);
    if (!listed.ok()) __builtin_trap();
    // All-or-nothing: a refused batch (or validate_only) leaves no job behind.
    if ((!ids.ok() || request.validate_only()) && listed->jobs_size() != 0) __builtin_trap();
    // Whatever the engine took, its own validator took too.
    if (ids.ok() && !request.validate_only() && !all_valid) __builtin_trap();
    // ... and job.proto's rules hold for it (validate_only answers the same question).
    if (ids.ok() && !all_well_formed) __builtin_trap();
  });
  return 0;
}
