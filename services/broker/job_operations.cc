// BrokerEngine: what operators do to jobs that exist (RetryJob, DeleteJob, and the
// per-job rules that bulk operations apply in batches). Every change goes through
// Transition or Remove and the commit outbox. See broker_engine.h and broker.proto.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/broker/broker_engine.h"
#include "services/broker/job_policy.h"
#include "services/broker/job_states.h"

namespace cohort::broker {

using common::FromProto;
using common::ToProto;
using cohort::v1::Job;

namespace {

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

}  // namespace

absl::StatusOr<bool> BrokerEngine::RetryInto(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  if (!IsTerminal(job.state())) return false;
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
      if (it != jobs_.end() && !IsTerminal(it->second.job.state())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "job ", job.id(), " has unfinished dependents: job ", child, " is ",
            cohort::v1::JobState_Name(it->second.job.state()), " and waits on it; delete or cancel those first"));
      }
    }
  }
  return absl::OkStatus();
}

void BrokerEngine::CancelInto(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  if (job.state() == cohort::v1::JOB_STATE_RUNNING) {
    if (job.cancel_requested()) return;
    job.set_cancel_requested(true);
    Transition(rec, cohort::v1::JOB_STATE_RUNNING, cohort::v1::TRANSITION_REASON_CANCEL_REQUESTED, p);
    if (ExecutorSession* s = sessions_.FindExecutor(job.executor_id())) {
      p.sends.emplace_back(s->token, ExecutorSessions::CancelMessage(job.id(), job.attempt(), "cancelled by a client"));
    }
    return;
  }
  if (job.state() == cohort::v1::JOB_STATE_QUEUED) {
    dispatcher_.Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
  }
  *job.mutable_error() = MakeError("cancelled", "cancelled by a client");
  Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
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
  if (fenced || !IsTerminal(rec.job.state())) {
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
  co_return response;
}

runtime::Task<absl::StatusOr<cohort::v1::DeleteJobResponse>> BrokerEngine::DeleteJob(std::string id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = jobs_.find(id);
  if (it == jobs_.end()) co_return NotFound(id);
  if (absl::Status s = CheckDeletable(it->second); !s.ok()) co_return s;
  cohort::v1::DeleteJobResponse response;
  response.set_state(it->second.job.state());
  Pending p;
  Remove(it, p);
  co_await Persist(std::move(p));
  co_return response;
}

}  // namespace cohort::broker
