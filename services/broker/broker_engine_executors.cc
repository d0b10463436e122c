// BrokerEngine and its executors: sessions (Attach, messages, Detach), dispatch into
// credits, leases (owned by the executor id, renewed by Hello.running and
// heartbeats), the outcome of each attempt, and deadlines. Every change goes through
// Transition and the commit outbox. See broker_engine.h.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/proto_time.h"
#include "libs/common/wire_time.h"
#include "services/broker/broker_engine.h"
#include "services/broker/job_policy.h"
#include "libs/common/job_states.h"

namespace cohort::broker {

using common::FromProto;
using common::ToProto;
using cohort::v1::Error;
using cohort::v1::ExecutorMessage;
using cohort::v1::Job;
using cohort::v1::TransitionReason;

namespace {

cohort::v1::BrokerMessage DrainMessage() {
  cohort::v1::BrokerMessage drain;
  drain.mutable_drain()->set_reason("the broker is shutting down");
  return drain;
}

}  // namespace

// ---- Sessions ----------------------------------------------------------------------------

absl::StatusOr<std::uint64_t> BrokerEngine::Attach(const ExecutorMessage::Hello& hello, ExecutorChannel* channel,
                                                   const std::string& principal) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = ExecutorSessions::CheckHello(hello, options_.max_executor_capacity); !s.ok()) return s;
  if (ExecutorSession* old = sessions_.FindExecutor(hello.executor_id())) {
    if (old->principal != principal) {
      return absl::PermissionDeniedError(
          "this executor_id is connected under another principal: a second stream is refused, not a takeover");
    }
    old->channel->End(absl::AbortedError("replaced by a newer Connect stream with the same executor_id"));
    Detach(old->token);
  }
  ExecutorSession& s = sessions_.Add(hello, channel, Now());
  s.principal = principal;
  // Held attempts stay within the capacity limit (executor.proto, Hello.prefetch).
  s.hello.set_prefetch(std::min(hello.prefetch(), options_.max_executor_capacity - hello.capacity()));
  metrics_.executors().Set(static_cast<double>(sessions_.size()));
  ExportAllQueueGauges();
  cohort::v1::BrokerMessage welcome;
  *welcome.mutable_welcome()->mutable_heartbeat_interval() = ToProto(absl::FromChrono(options_.heartbeat_interval));
  welcome.mutable_welcome()->set_complete_carries_credit(true);
  welcome.mutable_welcome()->set_accepts_complete_batches(true);
  channel->Send(std::move(welcome));
  if (draining_) channel->Send(DrainMessage());  // connected during the shutdown
  // A reconnect: keep what this executor id still leases, stop the rest.
  for (const cohort::v1::AttemptRef& ref : hello.running()) {
    auto it = jobs_.find(ref.job_id());
    if (it == jobs_.end() || !LeasedTo(it->second, hello.executor_id(), ref.attempt())) {
      channel->Send(ExecutorSessions::CancelMessage(ref.job_id(), ref.attempt(), "lease lost"));
      continue;
    }
    s.running.insert(ref.job_id());
    ArmLease(it->second);
    // A cancel requested while it was away could not be told then.
    if (it->second.job.cancel_requested()) channel->Send(ExecutorSessions::CancelMessage(ref.job_id(), ref.attempt(), "cancelled"));
  }
  return s.token;
}

absl::Status BrokerEngine::OnExecutorMessage(std::uint64_t token, const ExecutorMessage& message) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  ExecutorSession* s = sessions_.Find(token);
  if (s == nullptr) return absl::FailedPreconditionError("the session was replaced by a newer connection");
  switch (message.body_case()) {
    case ExecutorMessage::kCredit: {
      s->Grant(message.credit().credits());
      Dispatch();
      return absl::OkStatus();
    }
    case ExecutorMessage::kHeartbeat: {
      if (message.heartbeat().running_size() > ExecutorSessions::MaxHeld(options_.max_executor_capacity)) {
        return absl::InvalidArgumentError(absl::StrCat("heartbeat.running lists ", message.heartbeat().running_size(),
                                                       " attempts: the limit is ",
                                                       ExecutorSessions::MaxHeld(options_.max_executor_capacity)));
      }
      s->last_heartbeat = Now();
      // Answered even when it lists nothing (executor.proto): the executor's watchdog
      // takes a broker that stays silent for 3 intervals for a wedged stream.
      cohort::v1::BrokerMessage extended;
      *extended.mutable_lease_extended()->mutable_lease() = ToProto(absl::FromChrono(options_.lease));
      for (const cohort::v1::AttemptRef& ref : message.heartbeat().running()) {
        auto it = jobs_.find(ref.job_id());
        if (it == jobs_.end() || !LeasedTo(it->second, s->hello.executor_id(), ref.attempt())) {
          // Not leased to it (reassigned, ended or unknown): stop the orphan.
          s->channel->Send(ExecutorSessions::CancelMessage(ref.job_id(), ref.attempt(), "this attempt is not leased to this executor"));
          continue;
        }
        s->running.insert(ref.job_id());  // also binds an attempt from a broken stream
        ArmLease(it->second);
        *extended.mutable_lease_extended()->add_attempts() = ref;
      }
      s->channel->Send(std::move(extended));
      return absl::OkStatus();
    }
    case ExecutorMessage::kProgress: {
      const auto& pr = message.progress();
      auto it = jobs_.find(pr.job_id());
      if (it != jobs_.end() && LeasedTo(it->second, s->hello.executor_id(), pr.attempt())) {
        cohort::v1::Progress& progress = *it->second.job.mutable_progress();
        progress = pr.progress();
        // Clamped to [0, 1] (job.proto); NaN reads as no progress.
        const double f = progress.fraction();
        progress.set_fraction(f >= 0 ? std::min(f, 1.0) : 0.0);
      }
      return absl::OkStatus();
    }
    case ExecutorMessage::kComplete: {
      Pending p;
      CompleteInto(*s, message.complete(), p);
      DispatchInto(p);  // the next Assigns share the completion's commit
      if (!p.batch.empty()) Persist(std::move(p));
      return absl::OkStatus();
    }
    case ExecutorMessage::kCompletes: {
      const auto& completes = message.completes().completes();
      const std::int32_t limit = ExecutorSessions::MaxHeld(options_.max_executor_capacity);
      if (completes.empty()) return absl::InvalidArgumentError("completes lists no completion");
      if (completes.size() > limit) {
        return absl::InvalidArgumentError(
            absl::StrCat("completes lists ", completes.size(), " completions: the limit is ", limit));
      }
      // As many Completes in a row, but one turn and one commit for them all and for
      // the Assigns their credits enable.
      Pending p;
      for (const ExecutorMessage::Complete& c : completes) CompleteInto(*s, c, p);
      DispatchInto(p);
      if (!p.batch.empty()) Persist(std::move(p));
      return absl::OkStatus();
    }
    case ExecutorMessage::kHello:
      return absl::InvalidArgumentError("hello may only be the first message");
    case ExecutorMessage::BODY_NOT_SET:
      return absl::InvalidArgumentError("empty executor message");
  }
  return absl::InvalidArgumentError("unknown executor message");
}

void BrokerEngine::CompleteInto(ExecutorSession& s, const ExecutorMessage::Complete& c, Pending& p) {
  auto it = jobs_.find(c.job_id());
  // Leased to this executor id, on this stream or on one that broke.
  if (it == jobs_.end() || !LeasedTo(it->second, s.hello.executor_id(), c.attempt())) {
    metrics_.StaleCompletion();  // fenced: an attempt that is no longer current
    s.Grant(c.credit());         // the slot it held is free all the same
    return;
  }
  s.running.erase(c.job_id());
  if (Job& job = it->second.job; job.attempts_size() > 0) {
    job.mutable_attempts(job.attempts_size() - 1)->set_executor_principal(s.principal);
  }
  s.Grant(c.credit());  // after the erase: the finished attempt's slot counts as free
  FinishAttempt(it->second, c, p);
}

void BrokerEngine::Detach(std::uint64_t token, bool graceful) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  std::optional<ExecutorSession> session = sessions_.Remove(token);
  if (!session) return;
  metrics_.executors().Set(static_cast<double>(sessions_.size()));
  ExportAllQueueGauges();
  // Broken: the attempts keep their leases (their timers run on) for a reconnect.
  if (!graceful) return;
  Pending p;
  for (const std::string& id : session->running) ReturnUnstarted(jobs_.at(id), p);
  DispatchInto(p);
  if (!p.batch.empty()) Persist(std::move(p));
}

void BrokerEngine::DrainExecutors() {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (draining_) return;
  draining_ = true;
  for (auto& [token, session] : sessions_.all()) session.channel->Send(DrainMessage());
}

// ---- Attempts and leases -------------------------------------------------------------

void BrokerEngine::LoseAttempt(JobRecord& rec, Error error, TransitionReason reason, Pending& p) {
  Job& job = rec.job;
  EndLease(rec);
  if (job.attempts_size() > 0) {
    cohort::v1::Attempt* a = job.mutable_attempts(job.attempts_size() - 1);
    *a->mutable_end_time() = ToProto(Now());
    *a->mutable_error() = error;
  }
  if (job.cancel_requested()) {
    *job.mutable_error() = MakeError("cancelled", "cancelled while its executor was lost");
    Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  } else if (HasAttemptsLeft(job)) {
    metrics_.Redelivered(job.spec().queue());
    job.clear_executor_id();
    Transition(rec, cohort::v1::JOB_STATE_QUEUED, reason, p);
  } else {
    *job.mutable_error() = std::move(error);
    Transition(rec, cohort::v1::JOB_STATE_FAILED, reason, p);
  }
}

void BrokerEngine::ReturnUnstarted(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  EndLease(rec);
  if (job.attempts_size() > 0) job.mutable_attempts()->RemoveLast();
  job.set_attempt(job.attempt() - 1);  // never started: no completion can carry this number
  job.clear_executor_id();
  job.clear_start_time();
  if (job.cancel_requested()) {
    *job.mutable_error() = MakeError("cancelled", "cancelled before it started");
    Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  } else {
    Transition(rec, cohort::v1::JOB_STATE_QUEUED, cohort::v1::TRANSITION_REASON_LEASE_EXPIRED, p);
  }
}

void BrokerEngine::FinishAttempt(JobRecord& rec, const ExecutorMessage::Complete& complete, Pending& p) {
  Job& job = rec.job;
  EndLease(rec);
  const absl::Time now = Now();
  if (job.has_start_time()) metrics_.RunDuration(job.spec().queue(), absl::ToDoubleSeconds(now - FromProto(job.start_time())));
  cohort::v1::Attempt* attempt = job.mutable_attempts(job.attempts_size() - 1);
  *attempt->mutable_end_time() = ToProto(now);
  if (complete.has_error()) *attempt->mutable_error() = complete.error();
  if (!complete.has_error()) {
    job.set_result(complete.result());
    Transition(rec, cohort::v1::JOB_STATE_SUCCEEDED, cohort::v1::TRANSITION_REASON_COMPLETED, p);
  } else if (job.cancel_requested()) {
    *job.mutable_error() = complete.error();
    Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  } else if (HasAttemptsLeft(job) && !IsPermanent(complete.error())) {
    *job.mutable_error() = complete.error();
    *job.mutable_not_before() = ToProto(now + Backoff(job.spec(), AttemptsUsed(job)));
    Transition(rec, cohort::v1::JOB_STATE_PENDING, cohort::v1::TRANSITION_REASON_ATTEMPT_FAILED, p);
  } else {
    *job.mutable_error() = complete.error();
    Transition(rec, cohort::v1::JOB_STATE_FAILED, cohort::v1::TRANSITION_REASON_ATTEMPT_FAILED, p);
  }
}

void BrokerEngine::EndLease(JobRecord& rec) {
  if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
  rec.lease_timer = 0;
  --dispatcher_.Queue(rec.job.spec().queue()).running;
}

void BrokerEngine::ArmLease(JobRecord& rec) {
  if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
  rec.lease_timer = loop_.CallAt(common::AddSaturated(loop_.Now(), options_.lease),
                                 [this, id = rec.job.id()] { OnLeaseExpired(id); });
}

void BrokerEngine::OnLeaseExpired(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  JobRecord& rec = it->second;
  rec.lease_timer = 0;
  if (rec.job.state() != cohort::v1::JOB_STATE_RUNNING) return;
  std::string executor = rec.job.executor_id();
  const std::int32_t attempt = rec.job.attempt();
  Pending p;
  if (ExecutorSession* s = sessions_.FindExecutor(executor)) {
    // Connected but silent (stalled): tell it to stop what is no longer its own.
    s->running.erase(id);
    p.sends.emplace_back(s->token, ExecutorSessions::CancelMessage(id, attempt, "lease lost"));
  }
  LoseAttempt(rec,
              MakeError("lease_expired", absl::StrCat("executor \"", executor,
                                                      "\" did not renew the lease in time (no heartbeat, or its "
                                                      "stream broke and it did not reconnect)")),
              cohort::v1::TRANSITION_REASON_LEASE_EXPIRED, p);
  DispatchInto(p);
  Persist(std::move(p));
}

bool BrokerEngine::LeasedTo(const JobRecord& rec, const std::string& executor_id, std::int32_t attempt) {
  return rec.job.state() == cohort::v1::JOB_STATE_RUNNING && rec.job.executor_id() == executor_id &&
         rec.job.attempt() == attempt;
}

// ---- Deadlines ----------------------------------------------------------------------------

void BrokerEngine::ArmDeadline(JobRecord& rec, Pending& p) {
  if (!rec.job.spec().has_deadline() || common::IsTerminal(rec.job.state())) return;
  // absl::Time holds any stored Timestamp, and the difference saturates to infinity.
  const absl::Duration left = FromProto(rec.job.spec().deadline()) - Now();
  if (left <= absl::ZeroDuration()) {
    ExceedDeadline(rec, p);
    return;
  }
  // Beyond any wire duration: it never comes, and no timer is armed that a test's
  // auto-advancing clock could jump to.
  if (left > common::kMaxWireDuration) return;
  if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
  rec.deadline_timer = loop_.CallAt(common::AddSaturated(loop_.Now(), common::ToChronoSaturated(left)),
                                    [this, id = rec.job.id()] { OnDeadline(id); });
}

void BrokerEngine::OnDeadline(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  JobRecord& rec = it->second;
  rec.deadline_timer = 0;
  if (common::IsTerminal(rec.job.state()) || stopping_) return;
  // The timer is the check: it was armed for the deadline on the broker's clock.
  Pending p;
  ExceedDeadline(rec, p);
  DispatchInto(p);  // a running attempt's slot is free
  Persist(std::move(p));
}

void BrokerEngine::ExceedDeadline(JobRecord& rec, Pending& p) {
  Job& job = rec.job;
  switch (job.state()) {
    case cohort::v1::JOB_STATE_QUEUED:
      dispatcher_.Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
      break;
    case cohort::v1::JOB_STATE_RUNNING: {
      EndLease(rec);
      if (job.attempts_size() > 0) {
        cohort::v1::Attempt* a = job.mutable_attempts(job.attempts_size() - 1);
        *a->mutable_end_time() = ToProto(Now());
        *a->mutable_error() = MakeError("deadline_exceeded", "the job's deadline passed while the attempt ran");
      }
      // A disconnected executor is told when it lists the attempt in Hello or a Heartbeat.
      if (ExecutorSession* s = sessions_.FindExecutor(job.executor_id())) {
        s->running.erase(job.id());
        p.sends.emplace_back(s->token, ExecutorSessions::CancelMessage(job.id(), job.attempt(), "deadline exceeded"));
      }
      break;
    }
    default:  // PENDING (or not yet stored, at Submit): nothing holds it anywhere else
      break;
  }
  *job.mutable_error() = MakeError("deadline_exceeded", "the job's deadline passed before it ended");
  Transition(rec, cohort::v1::JOB_STATE_FAILED, cohort::v1::TRANSITION_REASON_DEADLINE_EXCEEDED, p);
}

// ---- Dispatch -------------------------------------------------------------------------

void BrokerEngine::Dispatch() {
  Pending p;
  DispatchInto(p);
  if (!p.batch.empty()) Persist(std::move(p));
}

void BrokerEngine::DispatchInto(Pending& p) {
  if (stopping_ || draining_) return;
  const absl::Time now = Now();
  for (auto& [token, session] : sessions_.all()) {
    // To an executor that reads batches, this turn's Assigns go in one message.
    cohort::v1::BrokerMessage batch;
    const bool batched = session.hello.accepts_assign_batches();
    while (session.credits > 0) {
      std::optional<ReadyQueue::Entry> next = dispatcher_.Next(session.hello.queues(), session.kinds);
      if (!next) break;
      JobRecord* rec = &jobs_.at(next->job_id);
      Job& job = rec->job;
      QueueState& q = dispatcher_.Queue(job.spec().queue());
      ++q.running;
      --session.credits;
      session.running.insert(job.id());
      job.set_attempt(job.attempt() + 1);
      job.set_executor_id(session.hello.executor_id());
      *job.mutable_start_time() = ToProto(now);
      cohort::v1::Attempt* attempt = job.add_attempts();
      attempt->set_number(job.attempt());
      attempt->set_executor_id(session.hello.executor_id());
      attempt->set_executor_principal(session.principal);
      *attempt->mutable_start_time() = ToProto(now);
      metrics_.Dispatched(job.spec().queue(), absl::ToDoubleSeconds(now - FromProto(job.queue_time())));
      Transition(*rec, cohort::v1::JOB_STATE_RUNNING, cohort::v1::TRANSITION_REASON_ASSIGNED, p);
      ArmLease(*rec);
      cohort::v1::BrokerMessage msg;
      cohort::v1::BrokerMessage::Assign* assign = batched ? batch.mutable_assigns()->add_assigns() : msg.mutable_assign();
      *assign->mutable_job() = job;
      assign->set_attempt(job.attempt());
      *assign->mutable_lease() = ToProto(absl::FromChrono(options_.lease));
      if (!batched) p.sends.emplace_back(token, std::move(msg));
    }
    if (batch.assigns().assigns_size() == 1) {  // alone: the plain form every executor reads
      cohort::v1::BrokerMessage msg;
      *msg.mutable_assign() = std::move(*batch.mutable_assigns()->mutable_assigns(0));
      p.sends.emplace_back(token, std::move(msg));
    } else if (batch.assigns().assigns_size() > 1) {
      p.sends.emplace_back(token, std::move(batch));
    }
  }
}

}  // namespace cohort::broker
