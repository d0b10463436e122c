#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {

// Where exec jobs record their runs. A job made by Job() is `/bin/sh -c` appending the
// line "<job id> <attempt>" (from COHORT_JOB_ID and COHORT_ATTEMPT) to the log as soon
// as it starts, then sleeping: every real execution leaves exactly one line (appends
// of one short line are atomic), whatever happens to the services afterwards.
class RunLog {
 public:
  explicit RunLog(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }

  // An exec job on queue "default" that records its run, then sleeps `run_for`.
  cohort::v1::JobSpec Job(absl::Duration run_for, int max_attempts = 10) const;
  // Job id -> the attempt number of each run, in the order they started.
  std::map<std::string, std::vector<int>> Runs() const;

 private:
  std::string path_;
};

// Executor flags every fault test uses: exec of /bin/sh (the RunLog jobs), a short
// kill grace.
std::vector<std::string> ExecutorArgs(const std::string& broker, const std::string& id, int capacity);

// What the invariants allow beyond the guarantees that always hold.
struct Expect {
  // Every job ran exactly once: no fault cost a lease (the contract promises this for
  // a stall, SIGSTOP or reconnect shorter than the lease).
  bool exactly_once = false;
  // Every job ends SUCCEEDED (no job may exhaust its attempts).
  bool all_succeed = true;
};

// Checks, for the acknowledged jobs `ids` (waiting up to `timeout` for them to end):
// - every one exists (nothing acknowledged was lost) and reaches a terminal state;
// - no attempt of any job ran twice (each (job, attempt) appears at most once in the
//   run log), and every run's attempt is at most the job's last attempt: a repeat
//   happens only with a higher attempt number;
// - a SUCCEEDED exec job ran at least once, its succeeding attempt among the runs;
// - and what `expect` adds. Reports each broken invariant as a test failure.
void CheckInvariants(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids, const RunLog& log,
                     Expect expect, absl::Duration timeout = absl::Seconds(60));

// Waits (bounded by `timeout`) until the broker has reported every job of `ids`
// RUNNING, following its event log. False on timeout.
bool AwaitAllRunning(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids,
                     absl::Duration timeout = absl::Seconds(30));

// Submits `specs` in one call; fails the test on error.
std::vector<std::string> SubmitAll(cohort::v1::Broker::Stub& stub, const std::vector<cohort::v1::JobSpec>& specs);

// A stub on a fresh channel to `address`.
std::unique_ptr<cohort::v1::Broker::Stub> BrokerStub(const std::string& address);

std::unique_ptr<grpc::ClientContext> Deadline(std::chrono::milliseconds after);

// The broker flags of every fault test: short leases so lease loss is quick to reach.
// Lease 3 s, heartbeat 300 ms.
std::vector<std::string> BrokerArgs(const std::string& data_dir);
inline constexpr absl::Duration kLease = absl::Seconds(3);

}  // namespace cohort::testing
