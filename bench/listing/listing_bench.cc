// ListJobs served from the broker's indexes against the same listing served by a scan:
// an engine (in-memory store) holding --jobs PENDING jobs in a large queue and 100
// QUEUED ones in a small queue, each labelled with its queue. Listing the small queue
// by queue (the queue index: 100 candidates) and by label selector (no index: every
// job is a candidate) returns the same 100 jobs; the ratio is the index's gain.
//
//   bazel run --config=ci //bench/listing:listing_bench -- [--jobs=N] [--rounds=R]
//
// Prints figures; asserts nothing.
#include <stdio.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/common/ids.h"
#include "libs/store/mem_job_store.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"

namespace {

using cohort::runtime::Task;

cohort::v1::JobSpec Spec(const std::string& queue, bool pending) {
  cohort::v1::JobSpec s;
  s.set_queue(queue);
  s.set_kind("builtin.noop");
  (*s.mutable_labels())["tenant"] = queue;
  if (pending) s.mutable_delay()->set_seconds(24 * 3600);
  return s;
}

// Microseconds per ListJobs call of `req` (first page of 100), best of `rounds` runs
// of `calls` calls each.
double MicrosPerList(cohort::runtime::EventLoop& loop, cohort::broker::BrokerEngine& engine,
                     const cohort::v1::ListJobsRequest& req, int rounds, int calls, int* listed) {
  double best = 1e300;
  for (int r = 0; r < rounds; ++r) {
    const auto start = std::chrono::steady_clock::now();
    cohort::runtime::RunUntilComplete(loop, [&]() -> Task<void> {
      for (int i = 0; i < calls; ++i) *listed = (co_await engine.ListJobs(req))->jobs_size();
    }());
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, us / calls);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int jobs = 200'000;
  int rounds = 5;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--jobs=") && absl::SimpleAtoi(arg, &jobs) && jobs > 0) continue;
    if (absl::ConsumePrefix(&arg, "--rounds=") && absl::SimpleAtoi(arg, &rounds) && rounds > 0) continue;
    fprintf(stderr, "usage: listing_bench [--jobs=N] [--rounds=R]\n");
    return 2;
  }
  cohort::runtime::EventLoop loop;
  cohort::store::MemJobStore store;
  prometheus::Registry registry;
  cohort::broker::BrokerMetrics metrics(registry);
  cohort::common::JobIdGenerator ids;
  cohort::broker::BrokerEngine engine(loop, store, metrics, cohort::broker::BrokerOptions{}, [&] { return ids.Next(); });
  cohort::runtime::RunUntilComplete(loop, [&]() -> Task<void> {
    if (absl::Status s = co_await engine.Start(); !s.ok()) {
      fprintf(stderr, "start: %s\n", s.ToString().c_str());
      co_return;
    }
    for (int done = 0; done < jobs;) {
      const int n = std::min(2'000, jobs - done);
      std::vector<cohort::v1::JobSpec> batch(n, Spec("big", true));
      if (done == 0) {
        for (int i = 0; i < 100; ++i) batch.push_back(Spec("small", false));
      }
      absl::StatusOr<std::vector<std::string>> submitted = co_await engine.Submit(std::move(batch), false);
      if (!submitted.ok()) {
        fprintf(stderr, "submit: %s\n", submitted.status().ToString().c_str());
        co_return;
      }
      done += n;
    }
  }());
  cohort::v1::ListJobsRequest by_queue;
  by_queue.mutable_filter()->set_queue("small");
  cohort::v1::ListJobsRequest by_label;
  by_label.mutable_filter()->set_label_selector("tenant=small");
  cohort::v1::ListJobsRequest by_state;
  by_state.mutable_filter()->add_states(cohort::v1::JOB_STATE_QUEUED);
  int a = 0, b = 0, c = 0;
  const double indexed = MicrosPerList(loop, engine, by_queue, rounds, 200, &a);
  const double by_state_us = MicrosPerList(loop, engine, by_state, rounds, 200, &c);
  const double scanned = MicrosPerList(loop, engine, by_label, rounds, 5, &b);
  printf("jobs: %d PENDING in queue big, 100 QUEUED in queue small\n", jobs);
  printf("ListJobs filter.queue=small (queue index):        %10.1f us per call, %d jobs\n", indexed, a);
  printf("ListJobs filter.states=QUEUED (state index):      %10.1f us per call, %d jobs\n", by_state_us, c);
  printf("ListJobs label_selector=tenant=small (every job): %10.1f us per call, %d jobs\n", scanned, b);
  printf("scan / index: %.0fx\n", scanned / indexed);
  cohort::runtime::RunUntilComplete(loop, engine.Stop());
  return 0;
}
