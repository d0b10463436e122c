#include "services/scheduler/release_tracker.h"

#include <utility>

#include "absl/time/time.h"
#include "libs/common/job_states.h"
#include "libs/common/proto_time.h"
#include "libs/common/wire_time.h"

namespace cohort::scheduler {
namespace {

using common::FromProto;
using common::IsTerminal;
using cohort::v1::Job;
using cohort::v1::JobState;
using cohort::v1::TransitionReason;

}  // namespace

ReleaseTracker::ReleaseTracker(runtime::EventLoop& loop, ReleaseFn release)
    : loop_(loop), release_(std::move(release)) {}

ReleaseTracker::~ReleaseTracker() { Reset(); }

void ReleaseTracker::Observe(const Job& job) {
  const std::string& id = job.id();
  if (IsTerminal(job.state())) {
    Untrack(id);
    live_.erase(id);
    OnParentEnded(id, job.state());
    return;
  }
  if (auto it = pending_.find(id); it != pending_.end() && it->second.sequence >= job.sequence()) return;
  if (auto it = live_.find(id); it != live_.end() && it->second >= job.sequence()) return;
  if (job.state() == cohort::v1::JOB_STATE_PENDING) {
    live_.erase(id);
    Track(job);
  } else {
    Untrack(id);
    live_[id] = job.sequence();
  }
}

bool ReleaseTracker::OnEvent(const cohort::v1::JobEvent& event) {
  if (event.reason() == cohort::v1::TRANSITION_REASON_DELETED) {
    Deleted(event.job_id());
    return true;
  }
  Observe(event.job());
  return IsTerminal(event.job().state());
}

void ReleaseTracker::ParentGone(const std::string& id) { OnParentEnded(id, cohort::v1::JOB_STATE_FAILED); }

void ReleaseTracker::Deleted(const std::string& id) {
  Untrack(id);
  live_.erase(id);
  ParentGone(id);
}

std::vector<std::string> ReleaseTracker::TakeUnknownParents() {
  std::vector<std::string> out;
  for (const std::string& id : unknown_) {
    // Seen since it was noted (e.g. later in the same Submit batch): known after all.
    const bool known = pending_.contains(id) || live_.contains(id);
    if (children_.contains(id) && !known) out.push_back(id);
  }
  unknown_.clear();
  return out;
}

void ReleaseTracker::Reset() {
  for (auto& [id, p] : pending_) {
    if (p.timer != 0) loop_.CancelTimer(p.timer);
  }
  pending_.clear();
  live_.clear();
  children_.clear();
  unknown_.clear();
  timers_ = 0;
}

void ReleaseTracker::Track(const Job& job) {
  Untrack(job.id());
  Pending p;
  p.attempt = job.attempt();
  p.sequence = job.sequence();
  if (job.has_not_before()) p.not_before = FromProto(job.not_before());
  // Parents gate only the first attempt: a retry has run once, so they succeeded.
  if (job.attempt() == 0) {
    for (const std::string& parent : job.spec().depends_on()) {
      p.waiting_on.insert(parent);
      children_[parent].push_back(job.id());
      if (!pending_.contains(parent) && !live_.contains(parent)) unknown_.insert(parent);
    }
  }
  auto [it, inserted] = pending_.emplace(job.id(), std::move(p));
  Arm(it->first, it->second);
  if (it->second.time_reached && it->second.waiting_on.empty()) {
    TransitionReason reason = cohort::v1::TRANSITION_REASON_RUN_AT;
    if (job.attempt() > 0) {
      reason = cohort::v1::TRANSITION_REASON_BACKOFF;
    } else if (!job.has_not_before() && job.spec().depends_on_size() > 0) {
      reason = cohort::v1::TRANSITION_REASON_DEPENDENCIES;
    }
    Emit(it->first, it->second, reason);
  }
}

void ReleaseTracker::Untrack(const std::string& id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  if (it->second.timer != 0) {
    loop_.CancelTimer(it->second.timer);
    --timers_;
  }
  pending_.erase(it);
}

void ReleaseTracker::Arm(const std::string& id, Pending& p) {
  const absl::Time now = loop_.clock().SystemNow();
  if (!p.not_before.has_value() || *p.not_before <= now) {
    p.time_reached = true;
    return;
  }
  // Saturating: a run_at centuries ahead is a timer that never fires early, never one
  // whose deadline wrapped into the past (which re-armed itself in a tight loop).
  const runtime::TimePoint deadline = common::AddSaturated(loop_.Now(), *p.not_before - now);
  p.timer = loop_.CallAt(deadline, [this, id] { OnTimer(id); });
  ++timers_;
}

void ReleaseTracker::OnTimer(const std::string& id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending& p = it->second;
  p.timer = 0;
  --timers_;
  Arm(id, p);  // the loop's clock may run ahead of the wall clock: never release early
  if (!p.time_reached || !p.waiting_on.empty()) return;
  Emit(id, p, p.attempt > 0 ? cohort::v1::TRANSITION_REASON_BACKOFF : cohort::v1::TRANSITION_REASON_RUN_AT);
}

void ReleaseTracker::OnParentEnded(const std::string& parent, JobState state) {
  unknown_.erase(parent);
  auto node = children_.extract(parent);
  if (node.empty()) return;
  for (const std::string& child : node.mapped()) {
    auto it = pending_.find(child);
    if (it == pending_.end() || !it->second.waiting_on.contains(parent)) continue;
    if (state != cohort::v1::JOB_STATE_SUCCEEDED) {
      Emit(child, it->second, cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED, parent);
      continue;
    }
    it->second.waiting_on.erase(parent);
    if (it->second.waiting_on.empty() && it->second.time_reached) {
      Emit(child, it->second, cohort::v1::TRANSITION_REASON_DEPENDENCIES);
    }
  }
}

void ReleaseTracker::Emit(const std::string& id, const Pending& p, TransitionReason reason,
                          const std::string& parent) {
  Release r;
  r.set_job_id(id);
  r.set_attempt(p.attempt);
  r.set_reason(reason);
  if (!parent.empty()) r.set_parent_job_id(parent);
  // Remembered as live at this sequence, so replayed older events cannot re-arm it.
  const int64_t sequence = p.sequence;
  const std::string key = id;
  Untrack(key);
  live_[key] = sequence;
  release_(std::move(r));
}

}  // namespace cohort::scheduler
