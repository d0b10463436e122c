#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::dev {

// The q-quantile (q in [0, 1]) of `samples` by nearest rank; zero for no samples.
absl::Duration Percentile(std::vector<absl::Duration> samples, double q);

// What cohort-demo saw, for its closing table. Filled in by the demo's steps.
struct DemoSummary {
  // Every job the demo submitted, by the terminal state it was seen to end in.
  std::map<cohort::v1::JobState, std::int64_t> by_state;
  // The fan-out: jobs, first Submit sent to last completion received, and each job's
  // latency from its Submit being sent to its completion arriving, by priority.
  std::int64_t fan_out_jobs = 0;
  absl::Duration fan_out_elapsed;
  std::map<int, std::vector<absl::Duration>> latency_by_priority;
};

// The closing table, e.g.
//
//   jobs by state    SUCCEEDED 5,005   FAILED 1   CANCELLED 3
//   throughput       7,042 jobs/s (5,000 fan-out jobs, first submit to last done in 0.71 s)
//
//   priority    jobs   submit→done p50   p99
//          9   1,667           52.1 ms   98.0 ms
//          ...
//        all   5,000           ...
std::string FormatSummary(const DemoSummary& summary);

// "12.3 ms", "1.24 s".
std::string FormatLatency(absl::Duration d);

}  // namespace cohort::dev
