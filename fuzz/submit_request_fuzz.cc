// Submit as the broker handles it: the bytes of a SubmitRequest, each spec validated
// (job_validation.h), then the whole batch through BrokerEngine::Submit on an
// in-memory store, so the conversions past validation (delay, run_at, deadline,
// backoff, timers) run too. A spec the validator accepts must never crash the
// engine; a rejected batch must write nothing.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz/engine_harness.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/broker/job_validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cohort::v1::SubmitRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (request.jobs_size() > 64) return 0;  // the engine's batch cap is not what is fuzzed here
  const cohort::broker::SpecLimits limits;
  bool all_valid = true;
  for (int i = 0; i < request.jobs_size(); ++i) {
    all_valid = cohort::broker::ValidateSpec(request.jobs(i), i, limits).ok() && all_valid;
  }
  std::vector<cohort::v1::JobSpec> specs(request.jobs().begin(), request.jobs().end());
  cohort::fuzz::EngineHarness harness;
  harness.Run([&](cohort::broker::BrokerEngine& e) -> cohort::runtime::Task<void> {
    auto ids = co_await e.Submit(specs, request.validate_only());
    cohort::v1::ListJobsRequest all;
    auto listed = e.ListJobs(all);
    if (!listed.ok()) __builtin_trap();
    // All-or-nothing: a refused batch (or validate_only) leaves no job behind.
    if ((!ids.ok() || request.validate_only()) && listed->jobs_size() != 0) __builtin_trap();
    // Whatever the engine took, its own validator took too.
    if (ids.ok() && !request.validate_only() && !all_valid) __builtin_trap();
  });
  return 0;
}
