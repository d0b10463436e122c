// BrokerEngine: what operators do to jobs that exist (RetryJob, DeleteJob, and the
// per-job rules that bulk operations apply in batches). Every change goes through
// Transition or Remove and the commit outbox. See broker_engine.h and broker.proto.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/job_states.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/broker/batch_budget.h"
#include "services/broker/broker_engine.h"
#include "services/broker/job_policy.h"

namespace cohort::broker {

using common::FromProto;
using common::ToProto;
using cohort::v1::Job;

namespace {

const log::Logger kLog("broker");

// A job as RetryJob returns it: without payload and result.
Job Slim(const Job& job) {
  Job out = job;
  out.mutable_spec()->clear_payload();
  out.clear_result();
  return out;
}

absl::Status NotFound(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
}

// Room kept in a bulk batch for the operation's record (its filter is at most a few
// KiB) and the index entries around it.
constexpr std::size_t kBulkRecordBytes = 64 << 10;

}  // namespace

absl::StatusOr<bool> BrokerEngine::RetryInto(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  if (!common::IsTerminal(job.state())) return false;
  if (job.state() == cohort::v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.id(),
                                                      " SUCCEEDED: only a FAILED or CANCELLED job can be retried"));
  }
  const absl::Time now = Now();
  if (job.spec().has_deadline() && FromProto(job.spec().deadline()) <= now) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job.id(), "'s deadline has passed: it could never run again; submit a new job"));
  }
  // Parents gate only a job that never ran (as the scheduler releases it): one that
  // ran had them succeed already.
  bool held_by_parents = false;
  if (job.attempt() == 0) {
    for (const std::string& parent : job.spec().depends_on()) {
      auto it = jobs_.find(parent);
      if (it == jobs_.end()) {
        return absl::FailedPreconditionError(absl::StrCat("job ", job.id(), "'s parent ", common::QuoteBounded(parent),
                                                          " has been deleted: the job could never be released"));
      }
      held_by_parents |= it->second.job.state() != cohort::v1::JOB_STATE_SUCCEEDED;
    }
  }
  job.set_retry_count(job.retry_count() + 1);
  job.set_attempt_base(job.attempt());
  job.clear_error();
  job.clear_end_time();
  job.clear_expire_time();
  job.clear_cancel_requested();
  job.clear_executor_id();
  job.clear_progress();
  job.clear_not_before();
  // run_at and delay still hold a job back that was ended before they came.
  absl::Time not_before = absl::InfinitePast();
  if (job.spec().has_run_at()) not_before = FromProto(job.spec().run_at());
  if (job.spec().has_delay()) not_before = std::max(not_before, FromProto(job.create_time()) + Bounded(FromProto(job.spec().delay())));
  if (not_before > now) *job.mutable_not_before() = ToProto(not_before);
  const bool waits = job.has_not_before() || held_by_parents;
  Transition(rec, waits ? cohort::v1::JOB_STATE_PENDING : cohort::v1::JOB_STATE_QUEUED,
             cohort::v1::TRANSITION_REASON_RETRIED, p);
  ArmDeadline(rec, p);
  return true;
}

absl::Status BrokerEngine::CheckDeletable(const JobRecord& rec) const {
  const Job& job = rec.job;
  if (job.state() == cohort::v1::JOB_STATE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id(), " is RUNNING: cancel it (CancelJob) and delete it once it has ended"));
  }
  if (const auto* children = dependents_.Of(job.id())) {
    for (const std::string& child : *children) {
      auto it = jobs_.find(child);
      if (it != jobs_.end() && !common::IsTerminal(it->second.job.state())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", job.id(), " has unfinished dependents: job ", child, " is ",
            cohort::v1::JobState_Name(it->second.job.state()), " and waits on it; delete or cancel those first"));
      }
    }
  }
  return absl::OkStatus();
}

bool BrokerEngine::CancelInto(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  if (common::IsTerminal(job.state())) return false;
  if (job.state() == cohort::v1::JOB_STATE_RUNNING) {
    if (job.cancel_requested()) return false;
    job.set_cancel_requested(true);
    Transition(rec, cohort::v1::JOB_STATE_RUNNING, cohort::v1::TRANSITION_REASON_CANCEL_REQUESTED, p);
    if (ExecutorSession* s = sessions_.FindExecutor(job.executor_id())) {
      p.sends.emplace_back(s->token, ExecutorSessions::CancelMessage(job.id(), job.attempt(), "cancelled by a client"));
    }
    return true;
  }
  if (job.state() == cohort::v1::JOB_STATE_QUEUED) {
    dispatcher_.Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
  }
  *job.mutable_error() = MakeError("cancelled", "cancelled by a client");
  Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  return true;
}

runtime::Task<absl::StatusOr<cohort::v1::RetryJobResponse>> BrokerEngine::RetryJob(std::string id,
                                                                                   std::int32_t expected_attempt) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (expected_attempt < 0) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("expected_attempt is ", expected_attempt, ": use 0 (any) or the job's attempt as last seen"));
  }
  auto it = jobs_.find(id);
  if (it == jobs_.end()) co_return NotFound(id);
  JobRecord& rec = it->second;
  cohort::v1::RetryJobResponse response;
  const bool fenced = expected_attempt > 0 && rec.job.attempt() != expected_attempt;
  if (fenced || !common::IsTerminal(rec.job.state())) {
    *response.mutable_job() = Slim(rec.job);
    co_return response;
  }
  if (rec.job.state() != cohort::v1::JOB_STATE_SUCCEEDED) {
    if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  }
  Pending p;
  absl::StatusOr<bool> retried = RetryInto(rec, p);
  if (!retried.ok()) co_return retried.status();
  response.set_retried(*retried);
  *response.mutable_job() = Slim(rec.job);
  DispatchInto(p);  // the assignment shares the commit, and is sent after it
  co_await Persist(std::move(p));
  if (*retried) {
    kLog.Info("job retried", {{"job_id", id},
                              {"queue", response.job().spec().queue()},
                              {"kind", response.job().spec().kind()},
                              {"retry_count", response.job().retry_count()},
                              {"state", cohort::v1::JobState_Name(response.job().state())}});
  }
  co_return response;
}

runtime::Task<absl::StatusOr<cohort::v1::DeleteJobResponse>> BrokerEngine::DeleteJob(std::string id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = jobs_.find(id);
  if (it == jobs_.end()) co_return NotFound(id);
  if (absl::Status s = CheckDeletable(it->second); !s.ok()) co_return s;
  cohort::v1::DeleteJobResponse response;
  response.set_state(it->second.job.state());
  const std::string queue = it->second.job.spec().queue();
  const std::string kind = it->second.job.spec().kind();
  Pending p;
  Remove(it, p);
  co_await Persist(std::move(p));
  kLog.Info("job deleted", {{"job_id", id},
                            {"queue", queue},
                            {"kind", kind},
                            {"state", cohort::v1::JobState_Name(response.state())}});
  co_return response;
}

// ---- Bulk operations ------------------------------------------------------------------

bool BrokerEngine::ApplyBulkAction(cohort::v1::BulkAction action, std::map<std::string, JobRecord>::iterator it,
                                   Pending& p) {
  switch (action) {
    case cohort::v1::BULK_ACTION_CANCEL:
      return CancelInto(it->second, p);
    case cohort::v1::BULK_ACTION_RETRY: {
      absl::StatusOr<bool> retried = RetryInto(it->second, p);
      return retried.ok() && *retried;  // a refusal is what a bulk operation counts as skipped
    }
    case cohort::v1::BULK_ACTION_DELETE:
      if (!CheckDeletable(it->second).ok()) return false;
      Remove(it, p);
      return true;
    default:  // BulkOperations validated the action
      return false;
  }
}

BulkStep BrokerEngine::CountMatching(const JobMatcher& matcher, const std::string& after,
                                     std::size_t max_examined) const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  BulkStep step;
  step.cursor = after;
  auto it = after.empty() ? jobs_.begin() : jobs_.upper_bound(after);
  for (std::size_t examined = 0; it != jobs_.end() && examined < max_examined; ++it, ++examined) {
    step.cursor = it->first;
    if (matcher.Matches(it->second.job)) ++step.matched;
  }
  step.done = it == jobs_.end();
  return step;
}

runtime::Task<BulkStep> BrokerEngine::ApplyBulkStep(cohort::v1::BulkAction action, const JobMatcher& matcher,
                                                    std::string after, std::string last,
                                                    std::function<cohort::v1::BulkOperation(const BulkStep&)> record) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  const store::BatchLimits limits = store_.limits();
  BulkStep step;
  step.cursor = after;
  Pending p;
  std::size_t examined = 0;
  auto it = after.empty() ? jobs_.begin() : jobs_.upper_bound(after);
  while (true) {
    if (it == jobs_.end() || it->first > last) {
      step.done = true;
      break;
    }
    if (examined == options_.bulk.scan_jobs || static_cast<std::size_t>(step.matched) == options_.bulk.batch_jobs) break;
    // The batch and the record must be one commit: stop before MakeRoom would split it.
    if (!p.batch.empty() && (p.batch.bytes() + TransitionBytes(it->second.job) + kBulkRecordBytes > limits.max_bytes ||
                             p.batch.records() + kTransitionRecords + 1 > limits.max_records)) {
      break;
    }
    auto next = std::next(it);
    ++examined;
    step.cursor = it->first;
    if (matcher.Matches(it->second.job)) {
      ++step.matched;
      if (ApplyBulkAction(action, it, p)) {
        ++step.changed;
      } else {
        ++step.skipped;
      }
    }
    it = next;
  }
  if (step.matched == 0 && !step.done) co_return step;  // nothing handled needs to be durable
  p.batch.PutBulkOperation(record(step));
  if (action == cohort::v1::BULK_ACTION_RETRY) DispatchInto(p);  // after the record: never split from it
  co_await Persist(std::move(p));
  co_return step;
}

runtime::Task<void> BrokerEngine::PersistBulkRecords(std::vector<cohort::v1::BulkOperation> put,
                                                     std::vector<std::string> erase) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  Pending p;
  for (const cohort::v1::BulkOperation& op : put) p.batch.PutBulkOperation(op);
  for (const std::string& id : erase) p.batch.DeleteBulkOperation(id);
  if (!p.batch.empty()) co_await Persist(std::move(p));
}

}  // namespace cohort::broker
