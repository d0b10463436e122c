#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "libs/runtime/event_loop.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::scheduler {

// Decides when the broker's PENDING jobs may move on, from what it is told of jobs
// (a listing, then the event log). A job is released once per (job, attempt): when its
// not_before has passed (a timer on the loop, never a scan) and every parent has
// SUCCEEDED, or at once with DEPENDENCY_FAILED when a parent FAILED or was CANCELLED.
// An operator's RetryJob (a RETRIED event: the job back in PENDING or QUEUED) makes a
// job tracked again like a new one; a DeleteJob (a DELETED event) forgets it.
// Everything runs on the loop, whose clock is its one time source: wall time
// (SystemNow) to compare with not_before, monotonic time for its timers, both moved
// together by a ManualClock in tests. Memory is bounded by the broker's non-terminal
// jobs.
class ReleaseTracker {
 public:
  using Release = cohort::v1::ReleaseJobsRequest::Release;
  using ReleaseFn = absl::AnyInvocable<void(Release)>;
  ReleaseTracker(runtime::EventLoop& loop, ReleaseFn release);
  ~ReleaseTracker();
  ReleaseTracker(const ReleaseTracker&) = delete;
  ReleaseTracker& operator=(const ReleaseTracker&) = delete;

  // A job as it is now (from a listing, an event, or a lookup). Older news than what
  // is already known (by Job.sequence) is ignored.
  void Observe(const cohort::v1::Job& job);
  // An event of the broker's log: a DELETED one is Deleted(job_id), any other
  // Observe(event.job()). True when the job has ended for good or is gone (what a
  // schedule's overlap policy waits for).
  bool OnEvent(const cohort::v1::JobEvent& event);
  // A parent that no longer exists (deleted by retention): its dependents fail.
  void ParentGone(const std::string& id);
  // A job was deleted (DeleteJob, a bulk delete): forgotten, timer disarmed, never
  // released; dependents still waiting on it fail as for a parent gone (the broker
  // refuses to delete a parent of unfinished jobs, so none should be).
  void Deleted(const std::string& id);
  // Parents whose state is unknown (created before the listing and not PENDING): the
  // caller looks them up and passes the answers to Observe or ParentGone.
  std::vector<std::string> TakeUnknownParents();

  // Forgets everything and disarms every timer (before a fresh listing).
  void Reset();

  std::size_t pending_jobs() const { return pending_.size(); }
  std::size_t pending_timers() const { return timers_; }

 private:
  struct Pending {
    int32_t attempt = 0;
    int64_t sequence = 0;
    std::optional<absl::Time> not_before;
    runtime::TimerId timer = 0;
    bool time_reached = false;
    // Parents not known to have SUCCEEDED yet.
    absl::flat_hash_set<std::string> waiting_on;
  };

  void Track(const cohort::v1::Job& job);
  void Untrack(const std::string& id);
  void Arm(const std::string& id, Pending& p);
  void OnTimer(const std::string& id);
  void OnParentEnded(const std::string& parent, cohort::v1::JobState state);
  void Emit(const std::string& id, const Pending& p, cohort::v1::TransitionReason reason,
            const std::string& parent = "");

  runtime::EventLoop& loop_;
  ReleaseFn release_;
  absl::flat_hash_map<std::string, Pending> pending_;
  // Non-terminal jobs that are not PENDING, by last known sequence.
  absl::flat_hash_map<std::string, int64_t> live_;
  // parent -> PENDING children waiting on it.
  absl::flat_hash_map<std::string, std::vector<std::string>> children_;
  absl::flat_hash_set<std::string> unknown_;
  std::size_t timers_ = 0;
};

}  // namespace cohort::scheduler
