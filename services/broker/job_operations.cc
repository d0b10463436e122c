// BrokerEngine: what operators do to jobs that exist (RetryJob, DeleteJob, and the
// per-job rules that bulk operations apply in batches). Every change goes through
// Transition or Remove and the commit outbox. See broker_engine.h and broker.proto.
#include <algorithm>
#include <optional>

#include "absl/container/flat_hash_map.h"

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
      std::optional<cohort::v1::JobState> state = StateOf(parent);
      if (!state) {
        return absl::FailedPreconditionError(absl::StrCat("job ", job.id(), "'s parent ", common::QuoteBounded(parent),
                                                          " has been deleted: the job could never be released"));
      }
      held_by_parents |= *state != cohort::v1::JOB_STATE_SUCCEEDED;
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
  if (!co_await Load(id)) co_return NotFound(id);  // a finished job is read back to change it
  auto it = jobs_.find(id);
  JobRecord& rec = it->second;
  cohort::v1::RetryJobResponse response;
  const bool fenced = expected_attempt > 0 && rec.job.attempt() != expected_attempt;
  if (fenced || !common::IsTerminal(rec.job.state())) {
    *response.mutable_job() = Slim(rec.job);
    Compact(it);
    co_return response;
  }
  if (rec.job.state() != cohort::v1::JOB_STATE_SUCCEEDED) {
    if (absl::Status admitted = admit_write_(); !admitted.ok()) {
      Compact(it);
      co_return admitted;
    }
  }
  Pending p;
  absl::StatusOr<bool> retried = RetryInto(rec, p);
  if (!retried.ok()) {
    Compact(it);
    co_return retried.status();
  }
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
  if (!co_await Load(id)) co_return NotFound(id);  // the deletion's event carries the whole job
  auto it = jobs_.find(id);
  if (absl::Status s = CheckDeletable(it->second); !s.ok()) {
    Compact(it);
    co_return s;
  }
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

runtime::Task<BulkStep> BrokerEngine::CountMatching(const JobMatcher& matcher, std::string after,
                                                    std::size_t max_examined) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  BulkStep step;
  step.cursor = after;
  // Decided from memory where possible; a finished job with large labels is read,
  // and the walk resumes after it by id (the index may change meanwhile).
  std::optional<std::string> id = NextCandidate(matcher, after);
  for (std::size_t examined = 0; id && examined < max_examined; ++examined) {
    step.cursor = *id;
    if (auto it = jobs_.find(*id); it != jobs_.end()) {
      if (matcher.Matches(it->second.job)) ++step.matched;
    } else if (const EndedJob* summary = ended_.Find(*id); summary != nullptr && summary->labels_known()) {
      if (matcher.Matches(summary->Probe(*id))) ++step.matched;
    } else {
      absl::StatusOr<Job> job = co_await CurrentJob(step.cursor);
      if (job.ok() && matcher.Matches(*job)) ++step.matched;
    }
    id = NextCandidate(matcher, step.cursor);
  }
  step.done = !id;
  co_return step;
}

runtime::Task<BulkStep> BrokerEngine::ApplyBulkStep(cohort::v1::BulkAction action, const JobMatcher& matcher,
                                                    std::string after, std::string last,
                                                    std::function<cohort::v1::BulkOperation(const BulkStep&)> record) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  const store::BatchLimits limits = store_.limits();
  // First the finished jobs of this step that must be read: those the summary cannot
  // match, and (to retry or delete them) those it matches. Nothing is staged while
  // reading: a batch is staged and persisted with no suspension in between.
  absl::flat_hash_map<std::string, Job> read;
  {
    std::vector<std::string> wanted;
    std::size_t matched = 0;
    std::size_t examined = 0;
    for (std::optional<std::string> id = NextCandidate(matcher, after);
         id && *id <= last && examined < options_.bulk.scan_jobs && matched < options_.bulk.batch_jobs;
         id = NextCandidate(matcher, *id), ++examined) {
      const EndedJob* summary = ended_.Find(*id);
      if (summary == nullptr) {
        matched += matcher.Matches(jobs_.at(*id).job) ? 1 : 0;
      } else if (!summary->labels_known()) {
        wanted.push_back(*id);
      } else if (matcher.Matches(summary->Probe(*id))) {
        ++matched;
        if (action != cohort::v1::BULK_ACTION_CANCEL) wanted.push_back(*id);  // cancel leaves it as it is
      }
    }
    for (const std::string& id : wanted) {
      absl::StatusOr<Job> job = co_await CurrentJob(id);
      if (job.ok()) read.emplace(id, *std::move(job));
    }
  }
  BulkStep step;
  step.cursor = after;
  Pending p;
  std::size_t examined = 0;
  std::optional<std::string> id = NextCandidate(matcher, after);
  while (true) {
    if (!id || *id > last) {
      step.done = true;
      break;
    }
    if (examined == options_.bulk.scan_jobs || static_cast<std::size_t>(step.matched) == options_.bulk.batch_jobs) break;
    auto it = jobs_.find(*id);
    const EndedJob* summary = it == jobs_.end() ? ended_.Find(*id) : nullptr;
    auto loaded = read.find(*id);
    const bool fresh = summary != nullptr && loaded != read.end() && loaded->second.sequence() == summary->sequence;
    // A finished job this step must read but did not (it changed meanwhile): the next
    // step starts from it.
    if (summary != nullptr && !fresh &&
        (!summary->labels_known() ||
         (action != cohort::v1::BULK_ACTION_CANCEL && matcher.Matches(summary->Probe(*id))))) {
      break;
    }
    const Job probe = summary != nullptr && !fresh ? summary->Probe(*id) : Job();
    const Job& job = it != jobs_.end() ? it->second.job : fresh ? loaded->second : probe;
    // The batch and the record must be one commit: stop before MakeRoom would split it.
    if (!p.batch.empty() && (p.batch.bytes() + TransitionBytes(job) + kBulkRecordBytes > limits.max_bytes ||
                             p.batch.records() + kTransitionRecords + 1 > limits.max_records)) {
      break;
    }
    ++examined;
    step.cursor = *id;
    if (matcher.Matches(job)) {
      ++step.matched;
      bool changed = false;
      if (summary != nullptr && action != cohort::v1::BULK_ACTION_CANCEL) {
        // Finished and summarized: back into jobs_ with its record, to change it.
        Job full = loaded->second;
        if (Revive(full)) it = jobs_.find(full.id());
      }
      if (it != jobs_.end()) {
        const std::string job_id = it->first;
        changed = ApplyBulkAction(action, it, p);
        if (!changed) {
          if (auto again = jobs_.find(job_id); again != jobs_.end()) Compact(again);
        }
      }
      if (changed) {
        ++step.changed;
      } else {
        ++step.skipped;
      }
    }
    id = NextCandidate(matcher, step.cursor);
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
