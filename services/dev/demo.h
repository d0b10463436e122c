#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "services/dev/demo_summary.h"

namespace cohort::dev {

// How big cohort-demo's steps are. The defaults are the README's demo.
struct DemoOptions {
  int jobs = 5'000;        // fan-out jobs, spread over priorities 0, 5 and 9
  int batches = 5;         // Submit calls they are sent in
  std::string queue = "demo";
  // Every step must end within this, or it fails (rather than hang, e.g. when no
  // scheduler releases retries and dependencies).
  absl::Duration step_timeout = absl::Seconds(30);
  absl::Duration wait_for_timeout = absl::Milliseconds(500);  // the WaitFor that cancels
  absl::Duration retry_backoff = absl::Milliseconds(200);     // first retry delay, doubling
  bool progress = true;  // a live progress bar on stderr when it is a terminal
};

// The README's main demo, as a client of a running cohort-dev (synchronous gRPC).
// Each step narrates what it does on `out`, checks what Cohort answered, and returns
// OK, or an error saying what went wrong (or what did not happen within
// step_timeout). Steps are independent: a failed one does not stop the next.
class Demo {
 public:
  Demo(cohort::v1::Broker::Stub& stub, DemoOptions options, std::FILE* out)
      : stub_(stub), options_(std::move(options)), out_(out) {}

  // Thousands of jobs across priorities in a few Submit batches, followed to the end
  // by AsCompleted streams (which drive the progress bar and time each job), then a
  // Gather of all their results, each checked.
  absl::Status FanOutAndGather();
  // Wait(FIRST_COMPLETED) over a short and two long builtin.sleep jobs: returns with
  // the short one done and the long ones pending, which are then cancelled.
  absl::Status WaitFirstCompleted();
  // WaitFor with a timeout on a slow job: DEADLINE_EXCEEDED, and the job ends CANCELLED.
  absl::Status WaitForCancelsOnTimeout();
  // builtin.fail with max_attempts 3 and a short backoff: retried, ends FAILED with its
  // three attempts on record (needs the scheduler, which releases retries).
  absl::Status RetriesWithBackoff();
  // A diamond a -> (b, c) -> d in one Submit (depends_on_index): each job starts only
  // after its parents ended (needs the scheduler, which releases dependents).
  absl::Status DiamondDag();

  const DemoSummary& summary() const { return summary_; }

 private:
  // A context whose deadline is the current step's.
  std::unique_ptr<grpc::ClientContext> Context() const;
  void StartStep(const std::string& title);
  absl::StatusOr<std::vector<std::string>> Submit(const std::vector<cohort::v1::JobSpec>& specs);
  absl::StatusOr<cohort::v1::Job> Get(const std::string& id);
  // Waits until every job ended (ALL_COMPLETED within the step), counts them in the
  // summary and returns their outcomes, earliest first.
  absl::StatusOr<std::vector<cohort::v1::JobOutcome>> AwaitAll(const std::vector<std::string>& ids);
  cohort::v1::JobSpec Spec(const std::string& kind, const std::string& payload, int priority = 0) const;
  void Count(cohort::v1::JobState state, std::int64_t n = 1) { summary_.by_state[state] += n; }

  cohort::v1::Broker::Stub& stub_;
  const DemoOptions options_;
  std::FILE* const out_;
  int step_ = 0;
  absl::Time step_deadline_;
  DemoSummary summary_;
};

}  // namespace cohort::dev
