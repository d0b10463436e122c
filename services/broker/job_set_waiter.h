#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/broker_engine.h"
#include "services/broker/broker_metrics.h"

namespace cohort::broker {

// The outcome of an ended job as the waits return it: its id, state, and its result
// (SUCCEEDED) or its error.
cohort::v1::JobOutcome OutcomeOf(const cohort::v1::Job& job);

// Watches a set of jobs for one wait of JobWaits (job_waits.h), on the broker's
// loop: event-driven (the engine notifies it once a job's terminal state is durable),
// no polling and no thread. Records the jobs' outcomes in the order they ended (jobs
// already ended come first, by end time, ties in request order): an outcome, not the
// job's record, so a wait on many jobs holds about their results and errors only.
// Counts itself in cohort_broker_waiters while it lives, so a call whose client went
// away leaves nothing behind.
class JobSetWaiter {
 public:
  JobSetWaiter(BrokerEngine& engine, BrokerMetrics& metrics) : engine_(engine), metrics_(metrics) {
    metrics_.waiters().Increment();
  }
  ~JobSetWaiter() { metrics_.waiters().Decrement(); }
  JobSetWaiter(const JobSetWaiter&) = delete;
  JobSetWaiter& operator=(const JobSetWaiter&) = delete;

  // Watches each distinct id. NOT_FOUND naming the first few unknown ids (a bounded
  // prefix of each) and counting the rest, and nothing watched. Finished jobs' records
  // may be read from the store meanwhile; a job that ends meanwhile is recorded after
  // those already ended, as if it had ended once Watch returned.
  runtime::Task<absl::Status> Watch(std::vector<std::string> ids);

  std::size_t size() const { return nodes_.size(); }
  bool all_ended() const { return ended_.size() == nodes_.size(); }
  // The outcomes of the jobs that ended, in the order they did.
  const std::vector<cohort::v1::JobOutcome>& ended() const { return ended_; }
  // The distinct ids watched, in request order, and whether each has ended.
  const std::vector<std::string>& ids() const { return ids_; }
  bool has_ended(const std::string& id) const;
  const cohort::v1::JobOutcome* outcome(const std::string& id) const;

  // Waits until more than `seen` jobs have ended (true) or `deadline` passes (false).
  // Cancellable.
  runtime::Task<bool> WaitForMore(std::size_t seen, std::optional<runtime::TimePoint> deadline);

 private:
  struct Node final : JobWatcher {
    JobSetWaiter* owner = nullptr;
    void OnJobEnded(const cohort::v1::Job& job) override { owner->Record(OutcomeOf(job)); }
  };
  void Record(cohort::v1::JobOutcome outcome);

  BrokerEngine& engine_;
  BrokerMetrics& metrics_;
  std::vector<std::string> ids_;
  std::deque<Node> nodes_;  // stable addresses
  std::vector<cohort::v1::JobOutcome> ended_;
  bool watching_ = false;                   // in Watch: ends are held in held_
  std::vector<cohort::v1::JobOutcome> held_;
  absl::flat_hash_map<std::string, std::size_t> ended_index_;  // id -> position in ended_
  runtime::Event changed_;
};

}  // namespace cohort::broker
