#include "services/broker/broker_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"
#include "services/broker/job_states.h"

namespace cohort::broker {
namespace {

using common::FromProto;
using common::ToProto;
using cohort::v1::Error;
using cohort::v1::ExecutorMessage;
using cohort::v1::Job;
using cohort::v1::JobState;
using cohort::v1::TransitionReason;

constexpr char kQueueMetaPrefix[] = "queue:";

google::protobuf::Duration ToProtoDuration(Duration d) { return common::ToProto(absl::FromChrono(d)); }

int32_t MaxAttempts(const cohort::v1::JobSpec& spec) { return std::max(1, spec.max_attempts()); }

// A duration from a stored spec, made safe to add to a time: within
// [0, kMaxWireDuration]. Submit validates new specs; this also covers specs stored
// before it did, so a huge value means "far away", never an overflow that fires now.
absl::Duration Bounded(absl::Duration d) { return std::clamp(d, absl::ZeroDuration(), common::kMaxWireDuration); }

// Delay before retrying after failed attempt n (1-based): initial * multiplier^(n-1),
// capped, with +-jitter. Defaults: 1 s, x2, at most 5 min, no jitter.
absl::Duration Backoff(const cohort::v1::JobSpec& spec, int32_t attempt) {
  const auto& b = spec.backoff();
  absl::Duration initial = b.has_initial() ? Bounded(FromProto(b.initial())) : absl::Seconds(1);
  double multiplier = b.multiplier() >= 1 ? b.multiplier() : 2.0;  // false for NaN too
  absl::Duration cap = b.has_max() ? Bounded(FromProto(b.max())) : absl::Minutes(5);
  // absl::Duration saturates to infinity instead of overflowing; Bounded() brings it back.
  absl::Duration d = std::min(cap, Bounded(initial * std::pow(multiplier, std::max(0, attempt - 1))));
  const double jitter = std::isfinite(b.jitter()) ? std::clamp(b.jitter(), 0.0, 1.0) : 0.0;
  if (jitter > 0) {
    static absl::BitGen gen;
    d *= absl::Uniform(gen, 1.0 - jitter, 1.0 + jitter);
  }
  return Bounded(d);
}

// Failures that another attempt cannot fix: the job fails at once, whatever its
// attempts left (job.proto lists them).
bool IsPermanent(const Error& e) {
  return e.code() == "not_allowed" || e.code() == "unknown_kind" || e.code() == "spawn_failed";
}

// A queue's max_rate as the dispatcher may use it: 0 (unlimited) or within
// [kMinQueueRate, kMaxQueueRate]. SetQueueLimits rejects anything else; this repairs a
// value stored before it did (a tiny rate once overflowed the next-token time and
// wedged the broker).
double UsableRate(double rate) {
  if (!(rate > 0)) return 0;  // NaN, negative, zero: unlimited
  if (std::isinf(rate)) return 0;
  return std::clamp(rate, kMinQueueRate, kMaxQueueRate);
}

Error MakeError(std::string code, std::string message) {
  Error e;
  e.set_code(std::move(code));
  e.set_message(std::move(message));
  return e;
}

// The fields JobBatch needs of a job's stored version to move its index entries,
// without copying its payload.
Job IndexKeysOf(const Job& job) {
  Job keys;
  keys.set_id(job.id());
  keys.set_state(job.state());
  keys.set_sequence(job.sequence());
  keys.mutable_spec()->set_queue(job.spec().queue());
  keys.mutable_spec()->set_priority(job.spec().priority());
  if (job.has_not_before()) *keys.mutable_not_before() = job.not_before();
  return keys;
}

// The job as it appears in events and listings: without payload and result.
Job Summary(Job& job) {
  std::string payload = std::move(*job.mutable_spec()->mutable_payload());
  std::string result = job.has_result() ? std::move(*job.mutable_result()) : std::string();
  bool had_result = job.has_result();
  Job summary = job;
  summary.mutable_spec()->clear_payload();
  summary.clear_result();
  *job.mutable_spec()->mutable_payload() = std::move(payload);
  if (had_result) *job.mutable_result() = std::move(result);
  return summary;
}

}  // namespace

BrokerEngine::BrokerEngine(runtime::EventLoop& loop, store::JobStore& store, BrokerMetrics& metrics,
                           BrokerOptions options, std::function<std::string()> new_job_id)
    : loop_(loop),
      store_(store),
      metrics_(metrics),
      options_(std::move(options)),
      new_job_id_(std::move(new_job_id)),
      commit_event_(std::make_unique<runtime::Event>()) {}

BrokerEngine::~BrokerEngine() {
  if (sweep_timer_ != 0) loop_.CancelTimer(sweep_timer_);
  if (rate_timer_ != 0) loop_.CancelTimer(rate_timer_);
  for (auto& [id, rec] : jobs_) {
    if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
    if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
  }
}

absl::Time BrokerEngine::Now() const { return absl::Now(); }

BrokerEngine::QueueState& BrokerEngine::Queue(const std::string& name) {
  auto it = queues_.find(name);
  if (it == queues_.end()) {
    it = queues_.emplace(name, QueueState(options_.starvation_every)).first;
    it->second.limits.set_max_concurrency(0);
    it->second.limits.set_max_rate(0);
    it->second.limits.set_weight(1);
  }
  return it->second;
}

runtime::Task<absl::Status> BrokerEngine::Start() {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  absl::StatusOr<store::RecoveredState> state = co_await store_.Recover();
  if (!state.ok()) co_return state.status();
  last_sequence_ = committed_sequence_ = state->last_event_sequence;
  for (const auto& [key, value] : state->meta) {
    if (key.rfind(kQueueMetaPrefix, 0) != 0) continue;
    cohort::v1::QueueInfo info;
    if (!info.ParseFromString(value)) co_return absl::DataLossError(absl::StrCat("meta ", key, " is corrupt"));
    QueueState& q = Queue(info.name());
    q.paused = info.paused();
    q.limits = info.limits();
    q.limits.set_max_rate(UsableRate(q.limits.max_rate()));
    q.tokens = std::max(1.0, q.limits.max_rate());  // a full bucket, as SetQueueLimits leaves it
    q.refilled = loop_.Now();
  }
  for (Job& job : state->jobs) {
    std::string id = job.id();
    if (!job.spec().idempotency_key().empty()) idempotency_[job.spec().idempotency_key()] = id;
    if (job.state() == cohort::v1::JOB_STATE_RUNNING) ++Queue(job.spec().queue()).running;
    jobs_[id].job = std::move(job);
  }
  for (const store::ReadyEntry& e : state->ready) Queue(e.queue).ready.Push({e.priority, e.sequence, e.job_id});
  Pending p;
  for (auto& [id, rec] : jobs_) {
    if (rec.job.state() != cohort::v1::JOB_STATE_RUNNING) continue;
    LoseAttempt(rec, MakeError("lease_expired", "the broker restarted while the attempt ran"),
                cohort::v1::TRANSITION_REASON_LEASE_EXPIRED, p);
  }
  for (auto& [id, rec] : jobs_) ArmDeadline(rec, p);
  if (!p.batch.empty()) co_await Persist(std::move(p));
  for (const auto& [id, rec] : jobs_) {
    if (IsTerminal(rec.job.state())) NoteEnded(rec.job);
  }
  for (const auto& [name, q] : queues_) ExportQueueGauges(name);
  sweep_timer_ = loop_.CallLater(options_.sweep_interval, [this] { Sweep(); });
  co_return absl::OkStatus();
}

runtime::Task<void> BrokerEngine::Stop() {
  stopping_ = true;
  if (sweep_timer_ != 0) loop_.CancelTimer(sweep_timer_);
  if (rate_timer_ != 0) loop_.CancelTimer(rate_timer_);
  sweep_timer_ = rate_timer_ = 0;
  co_await gate_.Close();
}

void BrokerEngine::NoteEnded(const Job& job) {
  absl::Time expire = job.has_expire_time() ? FromProto(job.expire_time()) : absl::Now();
  expiries_.emplace(expire, job.id());
}

void BrokerEngine::Sweep() {
  sweep_timer_ = 0;
  if (stopping_) return;
  Pending p;
  const absl::Time now = Now();
  while (!expiries_.empty() && expiries_.begin()->first <= now) {
    std::string id = std::move(expiries_.begin()->second);
    expiries_.erase(expiries_.begin());
    auto it = jobs_.find(id);
    if (it == jobs_.end() || !IsTerminal(it->second.job.state())) continue;
    const Job& job = it->second.job;
    if (auto k = idempotency_.find(job.spec().idempotency_key()); k != idempotency_.end() && k->second == id) {
      idempotency_.erase(k);
    }
    p.batch.DeleteJob(job);
    jobs_.erase(it);
  }
  // Events: trim everything committed before the retention window.
  const absl::Time cutoff = now - absl::FromChrono(options_.event_retention);
  std::int64_t trim_below = 0;
  while (!commits_.empty() && commits_.front().first < cutoff) {
    trim_below = commits_.front().second + 1;
    commits_.pop_front();
  }
  if (trim_below > 0) p.batch.TrimEventsBefore(trim_below);
  if (!p.batch.empty()) Persist(std::move(p));
  sweep_timer_ = loop_.CallLater(options_.sweep_interval, [this] { Sweep(); });
}

// ---- State changes ----------------------------------------------------------------------

void BrokerEngine::Transition(JobRecord& rec, JobState to, TransitionReason reason, Pending& p) {
  Job& job = rec.job;
  const JobState from = job.state();
  Job previous = IndexKeysOf(job);
  const absl::Time now = Now();
  job.set_state(to);
  job.set_sequence(++last_sequence_);
  p.sequence = last_sequence_;
  p.queues.insert(job.spec().queue());
  *job.mutable_update_time() = ToProto(now);
  if (to == cohort::v1::JOB_STATE_QUEUED && from != to) {
    *job.mutable_queue_time() = ToProto(now);
    Enqueue(rec);
  }
  if (IsTerminal(to) && !IsTerminal(from)) {
    *job.mutable_end_time() = ToProto(now);
    absl::Duration ttl = job.spec().has_result_ttl() ? Bounded(FromProto(job.spec().result_ttl()))
                                                     : absl::FromChrono(options_.result_ttl);
    if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
    rec.deadline_timer = 0;
    *job.mutable_expire_time() = ToProto(now + ttl);
    NoteEnded(job);
    p.ended.push_back(job.id());
    metrics_.Ended(job.spec().queue(), cohort::v1::JobState_Name(to));
  }
  p.batch.PutJob(job, from == cohort::v1::JOB_STATE_UNSPECIFIED ? nullptr : &previous);
  cohort::v1::JobEvent event;
  event.set_sequence(last_sequence_);
  *event.mutable_time() = ToProto(now);
  event.set_job_id(job.id());
  event.set_from_state(from);
  event.set_to_state(to);
  event.set_reason(reason);
  *event.mutable_job() = Summary(job);
  p.batch.AppendEvent(event);
}

void BrokerEngine::Enqueue(JobRecord& rec) {
  Queue(rec.job.spec().queue()).ready.Push({rec.job.spec().priority(), rec.job.sequence(), rec.job.id()});
}

void BrokerEngine::LoseAttempt(JobRecord& rec, Error error, TransitionReason reason, Pending& p) {
  Job& job = rec.job;
  if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
  rec.lease_timer = 0;
  --Queue(job.spec().queue()).running;
  if (job.attempts_size() > 0) {
    cohort::v1::Attempt* a = job.mutable_attempts(job.attempts_size() - 1);
    *a->mutable_end_time() = ToProto(Now());
    *a->mutable_error() = error;
  }
  if (job.cancel_requested()) {
    *job.mutable_error() = MakeError("cancelled", "cancelled while its executor was lost");
    Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  } else if (job.attempt() < MaxAttempts(job.spec())) {
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
  if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
  rec.lease_timer = 0;
  --Queue(job.spec().queue()).running;
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
  if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
  rec.lease_timer = 0;
  --Queue(job.spec().queue()).running;
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
  } else if (job.attempt() < MaxAttempts(job.spec()) && !IsPermanent(complete.error())) {
    *job.mutable_error() = complete.error();
    *job.mutable_not_before() = ToProto(now + Backoff(job.spec(), job.attempt()));
    Transition(rec, cohort::v1::JOB_STATE_PENDING, cohort::v1::TRANSITION_REASON_ATTEMPT_FAILED, p);
  } else {
    *job.mutable_error() = complete.error();
    Transition(rec, cohort::v1::JOB_STATE_FAILED, cohort::v1::TRANSITION_REASON_ATTEMPT_FAILED, p);
  }
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
  if (auto s = session_by_executor_.find(executor); s != session_by_executor_.end()) {
    // Connected but silent (stalled): tell it to stop what is no longer its own.
    sessions_.at(s->second).running.erase(id);
    p.sends.emplace_back(s->second, CancelMessage(id, attempt, "lease lost"));
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

cohort::v1::BrokerMessage BrokerEngine::CancelMessage(const std::string& job_id, std::int32_t attempt,
                                                      std::string reason) {
  cohort::v1::BrokerMessage msg;
  msg.mutable_cancel()->set_job_id(job_id);
  msg.mutable_cancel()->set_attempt(attempt);
  msg.mutable_cancel()->set_reason(std::move(reason));
  return msg;
}

// ---- Deadlines ----------------------------------------------------------------------------

void BrokerEngine::ArmDeadline(JobRecord& rec, Pending& p) {
  if (!rec.job.spec().has_deadline() || IsTerminal(rec.job.state())) return;
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
  if (IsTerminal(rec.job.state()) || stopping_) return;
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
      Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
      break;
    case cohort::v1::JOB_STATE_RUNNING: {
      if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
      rec.lease_timer = 0;
      --Queue(job.spec().queue()).running;
      if (job.attempts_size() > 0) {
        cohort::v1::Attempt* a = job.mutable_attempts(job.attempts_size() - 1);
        *a->mutable_end_time() = ToProto(Now());
        *a->mutable_error() = MakeError("deadline_exceeded", "the job's deadline passed while the attempt ran");
      }
      // A disconnected executor is told when it lists the attempt in Hello or a Heartbeat.
      if (auto s = session_by_executor_.find(job.executor_id()); s != session_by_executor_.end()) {
        sessions_.at(s->second).running.erase(job.id());
        p.sends.emplace_back(s->second, CancelMessage(job.id(), job.attempt(), "deadline exceeded"));
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

bool BrokerEngine::TakeToken(QueueState& q, runtime::TimePoint now, runtime::TimePoint& next_token) {
  const double rate = q.limits.max_rate();
  if (rate <= 0) return true;
  const double burst = std::max(1.0, rate);
  q.tokens = std::min(burst, q.tokens + rate * std::chrono::duration<double>(now - q.refilled).count());
  q.refilled = now;
  if (q.tokens >= 1) {
    q.tokens -= 1;
    return true;
  }
  // Saturating: a next token too far ahead to represent is one that never comes (no
  // timer is armed for TimePoint::max()), not a wrapped time in the past.
  const absl::Duration wait = absl::Seconds((1 - q.tokens) / rate);
  next_token = std::min(next_token, common::AddSaturated(now, common::ToChronoSaturated(wait)));
  return false;
}

BrokerEngine::JobRecord* BrokerEngine::NextFor(Session& session) {
  if (queues_.empty()) return nullptr;
  const auto& wanted = session.hello.queues();
  const runtime::TimePoint now = loop_.Now();
  runtime::TimePoint next_token = runtime::TimePoint::max();
  auto it = queues_.lower_bound(rr_queue_);
  for (std::size_t i = 0; i < queues_.size(); ++i, ++it) {
    if (it == queues_.end()) it = queues_.begin();
    const std::string& name = it->first;
    QueueState& q = it->second;
    if (q.paused || q.ready.empty()) continue;
    if (q.limits.max_concurrency() > 0 && q.running >= q.limits.max_concurrency()) continue;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    if (!TakeToken(q, now, next_token)) continue;
    if (name != rr_queue_) {
      rr_queue_ = name;
      rr_left_ = std::max(1, q.limits.weight());
    }
    if (--rr_left_ <= 0) {
      auto next = std::next(it);
      rr_queue_ = next == queues_.end() ? queues_.begin()->first : next->first;
      rr_left_ = 0;
      if (rr_queue_ == name) rr_left_ = std::max(1, q.limits.weight());
    }
    std::optional<ReadyQueue::Entry> entry = q.ready.Pop();
    return &jobs_.at(entry->job_id);
  }
  if (next_token != runtime::TimePoint::max() && rate_timer_ == 0) {
    // A rate-limited queue has work: dispatch again when its next token is due.
    rate_timer_ = loop_.CallAt(next_token, [this] {
      rate_timer_ = 0;
      Dispatch();
    });
  }
  return nullptr;
}

void BrokerEngine::Dispatch() {
  Pending p;
  DispatchInto(p);
  if (!p.batch.empty()) Persist(std::move(p));
}

void BrokerEngine::DispatchInto(Pending& p) {
  if (stopping_) return;
  const absl::Time now = Now();
  for (auto& [token, session] : sessions_) {
    while (session.credits > 0) {
      JobRecord* rec = NextFor(session);
      if (rec == nullptr) break;
      Job& job = rec->job;
      QueueState& q = Queue(job.spec().queue());
      ++q.running;
      --session.credits;
      session.running.insert(job.id());
      job.set_attempt(job.attempt() + 1);
      job.set_executor_id(session.hello.executor_id());
      *job.mutable_start_time() = ToProto(now);
      cohort::v1::Attempt* attempt = job.add_attempts();
      attempt->set_number(job.attempt());
      attempt->set_executor_id(session.hello.executor_id());
      *attempt->mutable_start_time() = ToProto(now);
      metrics_.Dispatched(job.spec().queue(), absl::ToDoubleSeconds(now - FromProto(job.queue_time())));
      Transition(*rec, cohort::v1::JOB_STATE_RUNNING, cohort::v1::TRANSITION_REASON_ASSIGNED, p);
      ArmLease(*rec);
      cohort::v1::BrokerMessage msg;
      *msg.mutable_assign()->mutable_job() = job;
      msg.mutable_assign()->set_attempt(job.attempt());
      *msg.mutable_assign()->mutable_lease() = ToProtoDuration(options_.lease);
      p.sends.emplace_back(token, std::move(msg));
    }
  }
}

// ---- Commits ----------------------------------------------------------------------------

runtime::TaskHandle<void> BrokerEngine::Persist(Pending p) {
  std::optional<runtime::Gate::Holder> holder = gate_.TryEnter();
  if (!holder) {
    // Stop() has begun and the server no longer answers: nothing is acknowledged any
    // more, so nothing needs to be durable (a restart sees those attempts as lost).
    return runtime::Spawn(loop_, []() -> runtime::Task<void> { co_return; }());
  }
  // Spawned, not awaited inline: commits reach the store in the order they were staged.
  return runtime::Spawn(loop_, CommitAndApply(std::move(p), std::move(*holder)));
}

runtime::Task<void> BrokerEngine::CommitAndApply(Pending p, runtime::Gate::Holder holder) {
  const absl::Time start = absl::Now();
  const double records = static_cast<double>(p.batch.records());
  absl::Status status = co_await store_.Commit(std::move(p.batch));
  if (!status.ok()) {
    // The in-memory state is ahead of the disk; only a restart can reconcile them.
    std::fprintf(stderr, "cohort-broker: commit failed, stopping: %s\n", status.ToString().c_str());
    std::abort();
  }
  metrics_.Commit(records, absl::ToDoubleSeconds(absl::Now() - start));
  committed_sequence_ = std::max(committed_sequence_, p.sequence);
  if (p.sequence > 0) commits_.emplace_back(absl::Now(), p.sequence);
  commit_event_->Set();
  commit_event_->Clear();
  for (auto& [token, msg] : p.sends) {
    if (Session* s = SessionOf(token)) s->channel->Send(std::move(msg));
  }
  for (const std::string& id : p.ended) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    while (JobWatcher* w = it->second.watchers.PopFront()) w->OnJobEnded(it->second.job);
  }
  for (const std::string& name : p.queues) ExportQueueGauges(name);
}

void BrokerEngine::ExportQueueGauges(const std::string& name) {
  auto found = queues_.find(name);
  if (found == queues_.end()) return;  // no job of it was ever queued (e.g. only PENDING ones)
  const QueueState& q = found->second;
  // A time, not an age: an age set here would freeze while the queue does not change.
  std::optional<absl::Time> oldest_queued;
  if (const ReadyQueue::Entry* e = q.ready.Oldest()) {
    auto it = jobs_.find(e->job_id);
    if (it != jobs_.end()) oldest_queued = FromProto(it->second.job.queue_time());
  }
  metrics_.QueueGauges(name, static_cast<double>(q.ready.size()), static_cast<double>(q.running), oldest_queued);
}

BrokerEngine::Session* BrokerEngine::SessionOf(std::uint64_t token) {
  auto it = sessions_.find(token);
  return it == sessions_.end() ? nullptr : &it->second;
}

// ---- Clients ----------------------------------------------------------------------------

runtime::Task<absl::StatusOr<std::vector<std::string>>> BrokerEngine::Submit(std::vector<cohort::v1::JobSpec> specs,
                                                                             bool validate_only) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (specs.empty()) co_return absl::InvalidArgumentError("jobs is empty: submit at least one job");
  if (specs.size() > options_.max_submit_batch) {
    co_return absl::InvalidArgumentError(absl::StrCat("jobs has ", specs.size(), " entries: the limit per Submit is ",
                                                      options_.max_submit_batch));
  }
  std::vector<std::string> missing;
  for (int i = 0; i < static_cast<int>(specs.size()); ++i) {
    const cohort::v1::JobSpec& spec = specs[i];
    if (absl::Status s = ValidateSpec(spec, i, options_.spec_limits); !s.ok()) co_return s;
    for (int parent : spec.depends_on_index()) {
      if (parent < 0 || parent >= i) {
        co_return absl::InvalidArgumentError(absl::StrCat("jobs[", i, "].depends_on_index ", parent,
                                                          " must name an earlier job of this request (0..", i - 1, ")"));
      }
    }
    for (const std::string& parent : spec.depends_on()) {
      if (!jobs_.contains(parent)) missing.push_back(parent);
    }
  }
  if (!missing.empty()) co_return absl::NotFoundError(absl::StrCat("unknown parent jobs: ", common::QuoteListBounded(missing)));
  if (validate_only) co_return std::vector<std::string>{};

  Pending p;
  std::vector<std::string> ids;
  ids.reserve(specs.size());
  const absl::Time now = Now();
  for (cohort::v1::JobSpec& spec : specs) {
    if (!spec.idempotency_key().empty()) {
      if (auto it = idempotency_.find(spec.idempotency_key()); it != idempotency_.end()) {
        ids.push_back(it->second);
        continue;
      }
    }
    std::string id = new_job_id_();
    for (int parent : spec.depends_on_index()) spec.add_depends_on(ids[parent]);
    spec.clear_depends_on_index();
    JobRecord& rec = jobs_[id];
    Job& job = rec.job;
    job.set_id(id);
    *job.mutable_create_time() = ToProto(now);
    if (spec.has_run_at() && FromProto(spec.run_at()) > now) *job.mutable_not_before() = spec.run_at();
    if (spec.has_delay() && FromProto(spec.delay()) > absl::ZeroDuration()) {
      *job.mutable_not_before() = ToProto(now + Bounded(FromProto(spec.delay())));
    }
    bool waits = job.has_not_before() || spec.depends_on_size() > 0;
    if (!spec.idempotency_key().empty()) idempotency_[spec.idempotency_key()] = id;
    metrics_.Submitted(spec.queue());
    *job.mutable_spec() = std::move(spec);
    Transition(rec, waits ? cohort::v1::JOB_STATE_PENDING : cohort::v1::JOB_STATE_QUEUED,
               cohort::v1::TRANSITION_REASON_SUBMITTED, p);
    ArmDeadline(rec, p);  // a deadline already past fails it in this same commit
    ids.push_back(std::move(id));
  }
  if (p.batch.empty()) co_return ids;  // every spec was a known idempotency key
  DispatchInto(p);  // the assignments share the commit, and are sent after it
  co_await Persist(std::move(p));
  co_return ids;
}

absl::StatusOr<Job> BrokerEngine::GetJob(const std::string& id) const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
  return it->second.job;
}

absl::StatusOr<cohort::v1::ListJobsResponse> BrokerEngine::ListJobs(const cohort::v1::ListJobsRequest& request) const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (request.page_size() < 0) return absl::InvalidArgumentError("page_size must not be negative");
  if (!request.queue().empty()) {
    if (absl::Status s = CheckQueueName(request.queue(), "queue "); !s.ok()) return s;
  }
  for (int s : request.states()) {
    if (!cohort::v1::JobState_IsValid(s) || s == cohort::v1::JOB_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("states contains ", s, ", which is not a job state"));
    }
  }
  std::size_t page = request.page_size() == 0 ? 100 : std::min<std::size_t>(request.page_size(), options_.max_list_page);
  cohort::v1::ListJobsResponse response;
  response.set_sequence(committed_sequence_);
  auto it = request.page_token().empty() ? jobs_.begin() : jobs_.upper_bound(request.page_token());
  for (; it != jobs_.end(); ++it) {
    const Job& job = it->second.job;
    if (!request.queue().empty() && job.spec().queue() != request.queue()) continue;
    if (!request.states().empty() &&
        std::find(request.states().begin(), request.states().end(), job.state()) == request.states().end()) {
      continue;
    }
    if (static_cast<std::size_t>(response.jobs_size()) == page) {
      response.set_next_page_token(response.jobs(response.jobs_size() - 1).id());
      break;
    }
    Job* out = response.add_jobs();
    *out = job;
    out->mutable_spec()->clear_payload();
    out->clear_result();
  }
  return response;
}

runtime::Task<absl::StatusOr<cohort::v1::CancelJobResponse>> BrokerEngine::CancelJob(std::string id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = jobs_.find(id);
  if (it == jobs_.end()) co_return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
  JobRecord& rec = it->second;
  Job& job = rec.job;
  cohort::v1::CancelJobResponse response;
  if (IsTerminal(job.state())) {
    response.set_state(job.state());
    response.set_already_ended(true);
    co_return response;
  }
  Pending p;
  if (job.state() == cohort::v1::JOB_STATE_RUNNING) {
    if (!job.cancel_requested()) {
      job.set_cancel_requested(true);
      Transition(rec, cohort::v1::JOB_STATE_RUNNING, cohort::v1::TRANSITION_REASON_CANCEL_REQUESTED, p);
      if (auto s = session_by_executor_.find(job.executor_id()); s != session_by_executor_.end()) {
        cohort::v1::BrokerMessage msg;
        msg.mutable_cancel()->set_job_id(id);
        msg.mutable_cancel()->set_attempt(job.attempt());
        msg.mutable_cancel()->set_reason("cancelled by a client");
        p.sends.emplace_back(s->second, std::move(msg));
      }
    }
  } else {
    if (job.state() == cohort::v1::JOB_STATE_QUEUED) Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
    *job.mutable_error() = MakeError("cancelled", "cancelled by a client");
    Transition(rec, cohort::v1::JOB_STATE_CANCELLED, cohort::v1::TRANSITION_REASON_CANCELLED, p);
  }
  response.set_state(job.state());
  if (!p.batch.empty()) co_await Persist(std::move(p));
  co_return response;
}

runtime::Task<absl::StatusOr<std::vector<std::string>>> BrokerEngine::ReleaseJobs(cohort::v1::ReleaseJobsRequest request) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (static_cast<std::size_t>(request.releases_size()) > options_.max_submit_batch) {
    co_return absl::InvalidArgumentError(absl::StrCat("releases has ", request.releases_size(),
                                                      " entries: the limit is ", options_.max_submit_batch));
  }
  for (const auto& r : request.releases()) {
    if (r.reason() != cohort::v1::TRANSITION_REASON_RUN_AT && r.reason() != cohort::v1::TRANSITION_REASON_BACKOFF &&
        r.reason() != cohort::v1::TRANSITION_REASON_DEPENDENCIES &&
        r.reason() != cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED) {
      co_return absl::InvalidArgumentError(absl::StrCat("release of ", common::QuoteBounded(r.job_id()), ": reason must be RUN_AT, ",
                                                        "BACKOFF, DEPENDENCIES or DEPENDENCY_FAILED"));
    }
  }
  Pending p;
  std::vector<std::string> changed;
  for (const auto& r : request.releases()) {
    auto it = jobs_.find(r.job_id());
    if (it == jobs_.end()) continue;
    JobRecord& rec = it->second;
    Job& job = rec.job;
    if (job.state() != cohort::v1::JOB_STATE_PENDING || job.attempt() != r.attempt()) continue;  // fenced
    if (r.reason() == cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED) {
      const auto& parents = job.spec().depends_on();
      if (std::find(parents.begin(), parents.end(), r.parent_job_id()) == parents.end()) continue;
      bool fail = job.spec().on_dependency_failure() == cohort::v1::DEPENDENCY_FAILURE_POLICY_FAIL;
      *job.mutable_error() = MakeError("dependency_failed", absl::StrCat("parent job ", common::QuoteBounded(r.parent_job_id()), " did not succeed"));
      Transition(rec, fail ? cohort::v1::JOB_STATE_FAILED : cohort::v1::JOB_STATE_CANCELLED, r.reason(), p);
    } else {
      job.clear_not_before();
      Transition(rec, cohort::v1::JOB_STATE_QUEUED, r.reason(), p);
    }
    changed.push_back(job.id());
  }
  if (p.batch.empty()) co_return changed;
  DispatchInto(p);
  co_await Persist(std::move(p));
  co_return changed;
}

cohort::v1::ListQueuesResponse BrokerEngine::ListQueues() const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  cohort::v1::ListQueuesResponse response;
  const absl::Time now = Now();
  for (const auto& [name, q] : queues_) {
    cohort::v1::QueueInfo* info = response.add_queues();
    info->set_name(name);
    info->set_paused(q.paused);
    *info->mutable_limits() = q.limits;
    info->set_depth(static_cast<int64_t>(q.ready.size()));
    info->set_running(q.running);
    for (const auto& [priority, n] : q.ready.DepthByPriority()) {
      auto* d = info->add_depth_by_priority();
      d->set_priority(priority);
      d->set_queued(n);
    }
    if (const ReadyQueue::Entry* e = q.ready.Oldest()) {
      absl::Duration age = now - FromProto(jobs_.at(e->job_id).job.queue_time());
      *info->mutable_oldest_queued_age() = ToProto(age);
    }
  }
  return response;
}

void BrokerEngine::StageQueueSettings(const std::string& name, Pending& p) {
  const QueueState& q = queues_.at(name);
  cohort::v1::QueueInfo info;
  info.set_name(name);
  info.set_paused(q.paused);
  *info.mutable_limits() = q.limits;
  p.batch.PutMeta(absl::StrCat(kQueueMetaPrefix, name), info.SerializeAsString());
}

runtime::Task<absl::Status> BrokerEngine::PauseQueue(std::string queue, bool paused) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = CheckQueueName(queue, "queue "); !s.ok()) co_return s;
  Queue(queue).paused = paused;
  Pending p;
  StageQueueSettings(queue, p);
  co_await Persist(std::move(p));
  if (!paused) Dispatch();
  co_return absl::OkStatus();
}

runtime::Task<absl::StatusOr<cohort::v1::QueueLimits>> BrokerEngine::SetQueueLimits(std::string queue,
                                                                                    cohort::v1::QueueLimits limits) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = CheckQueueName(queue, "queue "); !s.ok()) co_return s;
  if (limits.has_max_concurrency() && limits.max_concurrency() < 0) {
    co_return absl::InvalidArgumentError("limits.max_concurrency must not be negative (0: unlimited)");
  }
  if (limits.has_max_rate() && limits.max_rate() != 0 &&
      !(limits.max_rate() >= kMinQueueRate && limits.max_rate() <= kMaxQueueRate)) {  // NaN fails too
    co_return absl::InvalidArgumentError(absl::StrCat("limits.max_rate must be 0 (unlimited) or between ",
                                                      kMinQueueRate, " and ", kMaxQueueRate, " jobs per second"));
  }
  if (limits.has_weight() && (limits.weight() < 0 || limits.weight() > 1000)) {
    co_return absl::InvalidArgumentError("limits.weight must be in 0..1000 (0: the default, 1)");
  }
  QueueState& q = Queue(queue);
  if (limits.has_max_concurrency()) q.limits.set_max_concurrency(limits.max_concurrency());
  if (limits.has_max_rate()) {
    q.limits.set_max_rate(limits.max_rate());
    q.tokens = std::max(1.0, limits.max_rate());  // a full bucket
    q.refilled = loop_.Now();
  }
  if (limits.has_weight()) q.limits.set_weight(std::max(1, limits.weight()));
  Pending p;
  StageQueueSettings(queue, p);
  co_await Persist(std::move(p));
  Dispatch();
  co_return q.limits;
}

cohort::v1::ListExecutorsResponse BrokerEngine::ListExecutors() const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  cohort::v1::ListExecutorsResponse response;
  std::map<std::string, const Session*> by_id;
  for (const auto& [token, s] : sessions_) by_id[s.hello.executor_id()] = &s;
  for (const auto& [id, s] : by_id) {
    cohort::v1::ExecutorInfo* info = response.add_executors();
    info->set_executor_id(id);
    *info->mutable_labels() = s->hello.labels();
    *info->mutable_queues() = s->hello.queues();
    info->set_capacity(s->hello.capacity());
    info->set_running(static_cast<int32_t>(s->running.size()));
    info->set_credits(s->credits);
    *info->mutable_connect_time() = ToProto(s->connect_time);
    *info->mutable_last_heartbeat_time() = ToProto(s->last_heartbeat);
  }
  return response;
}

absl::StatusOr<std::optional<Job>> BrokerEngine::WatchJob(const std::string& id, JobWatcher* watcher) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
  JobRecord& rec = it->second;
  // Ended and durable: answer now. Ended but not yet durable: the commit notifies.
  if (IsTerminal(rec.job.state()) && rec.job.sequence() <= committed_sequence_) return std::optional<Job>(rec.job);
  rec.watchers.PushBack(watcher);
  return std::optional<Job>();
}

// ---- Executors ----------------------------------------------------------------------------

absl::StatusOr<std::uint64_t> BrokerEngine::Attach(const ExecutorMessage::Hello& hello, ExecutorChannel* channel) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (hello.executor_id().empty() || hello.executor_id().size() > 128) {
    return absl::InvalidArgumentError("hello.executor_id must be 1-128 bytes");
  }
  if (hello.capacity() < 1 || hello.capacity() > options_.max_executor_capacity) {
    return absl::InvalidArgumentError(absl::StrCat("hello.capacity must be in 1..", options_.max_executor_capacity));
  }
  // Each listed attempt may cost a Cancel on the channel: keep that bounded too.
  if (hello.running_size() > options_.max_executor_capacity) {
    return absl::InvalidArgumentError(absl::StrCat("hello.running lists ", hello.running_size(),
                                                   " attempts: the limit is ", options_.max_executor_capacity));
  }
  for (const std::string& q : hello.queues()) {
    if (absl::Status s = CheckQueueName(q, "hello.queues: "); !s.ok()) return s;
  }
  if (auto old = session_by_executor_.find(hello.executor_id()); old != session_by_executor_.end()) {
    Detach(old->second);
  }
  std::uint64_t token = next_session_++;
  Session& s = sessions_.emplace(token, Session{token, hello, channel}).first->second;
  s.connect_time = s.last_heartbeat = Now();
  session_by_executor_[hello.executor_id()] = token;
  metrics_.executors().Set(static_cast<double>(sessions_.size()));
  cohort::v1::BrokerMessage welcome;
  *welcome.mutable_welcome()->mutable_heartbeat_interval() = ToProtoDuration(options_.heartbeat_interval);
  channel->Send(std::move(welcome));
  // A reconnect: keep what this executor id still leases, stop the rest.
  for (const cohort::v1::AttemptRef& ref : hello.running()) {
    auto it = jobs_.find(ref.job_id());
    if (it == jobs_.end() || !LeasedTo(it->second, hello.executor_id(), ref.attempt())) {
      channel->Send(CancelMessage(ref.job_id(), ref.attempt(), "lease lost"));
      continue;
    }
    s.running.insert(ref.job_id());
    ArmLease(it->second);
    // A cancel requested while it was away could not be told then.
    if (it->second.job.cancel_requested()) channel->Send(CancelMessage(ref.job_id(), ref.attempt(), "cancelled"));
  }
  return token;
}

absl::Status BrokerEngine::OnExecutorMessage(std::uint64_t token, const ExecutorMessage& message) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  Session* s = SessionOf(token);
  if (s == nullptr) return absl::FailedPreconditionError("the session was replaced by a newer connection");
  switch (message.body_case()) {
    case ExecutorMessage::kCredit: {
      // Never negative: a reconnect may bind more running attempts than the capacity.
      int64_t room = std::max<int64_t>(0, s->hello.capacity() - static_cast<int64_t>(s->running.size()));
      s->credits = static_cast<int32_t>(std::clamp<int64_t>(int64_t{s->credits} + message.credit().credits(), 0, room));
      Dispatch();
      return absl::OkStatus();
    }
    case ExecutorMessage::kHeartbeat: {
      if (message.heartbeat().running_size() > options_.max_executor_capacity) {
        return absl::InvalidArgumentError(absl::StrCat("heartbeat.running lists ", message.heartbeat().running_size(),
                                                       " attempts: the limit is ", options_.max_executor_capacity));
      }
      s->last_heartbeat = Now();
      cohort::v1::BrokerMessage extended;
      for (const cohort::v1::AttemptRef& ref : message.heartbeat().running()) {
        auto it = jobs_.find(ref.job_id());
        if (it == jobs_.end() || !LeasedTo(it->second, s->hello.executor_id(), ref.attempt())) {
          // Not leased to it (reassigned, ended or unknown): stop the orphan.
          s->channel->Send(CancelMessage(ref.job_id(), ref.attempt(), "this attempt is not leased to this executor"));
          continue;
        }
        s->running.insert(ref.job_id());  // also binds an attempt from a broken stream
        ArmLease(it->second);
        *extended.mutable_lease_extended()->add_attempts() = ref;
      }
      if (extended.has_lease_extended()) {
        *extended.mutable_lease_extended()->mutable_lease() = ToProtoDuration(options_.lease);
        s->channel->Send(std::move(extended));
      }
      return absl::OkStatus();
    }
    case ExecutorMessage::kProgress: {
      const auto& pr = message.progress();
      auto it = jobs_.find(pr.job_id());
      if (it != jobs_.end() && LeasedTo(it->second, s->hello.executor_id(), pr.attempt())) {
        *it->second.job.mutable_progress() = pr.progress();
      }
      return absl::OkStatus();
    }
    case ExecutorMessage::kComplete: {
      const auto& c = message.complete();
      auto it = jobs_.find(c.job_id());
      // Leased to this executor id, on this stream or on one that broke.
      if (it == jobs_.end() || !LeasedTo(it->second, s->hello.executor_id(), c.attempt())) {
        metrics_.StaleCompletion();  // fenced: an attempt that is no longer current
        return absl::OkStatus();
      }
      s->running.erase(c.job_id());
      Pending p;
      FinishAttempt(it->second, c, p);
      DispatchInto(p);
      Persist(std::move(p));
      return absl::OkStatus();
    }
    case ExecutorMessage::kHello:
      return absl::InvalidArgumentError("hello may only be the first message");
    case ExecutorMessage::BODY_NOT_SET:
      return absl::InvalidArgumentError("empty executor message");
  }
  return absl::InvalidArgumentError("unknown executor message");
}

void BrokerEngine::Detach(std::uint64_t token, bool graceful) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  auto it = sessions_.find(token);
  if (it == sessions_.end()) return;
  Session session = std::move(it->second);
  sessions_.erase(it);
  if (auto s = session_by_executor_.find(session.hello.executor_id()); s != session_by_executor_.end() && s->second == token) {
    session_by_executor_.erase(s);
  }
  metrics_.executors().Set(static_cast<double>(sessions_.size()));
  // Broken: the attempts keep their leases (their timers run on) for a reconnect.
  if (!graceful) return;
  Pending p;
  for (const std::string& id : session.running) ReturnUnstarted(jobs_.at(id), p);
  DispatchInto(p);
  if (!p.batch.empty()) Persist(std::move(p));
}

}  // namespace cohort::broker
