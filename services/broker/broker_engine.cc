// BrokerEngine's core: start and stop, Transition (the one way a job changes) and the
// commit outbox (Persist), and the retention sweep. See broker_engine.h.
#include "services/broker/broker_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/common/job_states.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/broker/batch_budget.h"
#include "services/broker/job_policy.h"

namespace cohort::broker {
namespace {

using common::FromProto;
using common::ToProto;
using cohort::v1::Job;
using cohort::v1::JobState;
using cohort::v1::TransitionReason;

const log::Logger kLog("broker");

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

// The job as it appears in events and listings, without payload and result, encoded;
// nullopt if it has neither (then it is the whole job). Moves them out of `job` for the
// encoding and back, rather than copying the job.
std::optional<std::string> EncodedSummary(Job& job) {
  if (job.spec().payload().empty() && !job.has_result()) return std::nullopt;
  std::string payload = std::move(*job.mutable_spec()->mutable_payload());
  job.mutable_spec()->clear_payload();
  std::optional<std::string> result;
  if (job.has_result()) {
    result = std::move(*job.mutable_result());
    job.clear_result();
  }
  std::string summary = job.SerializeAsString();
  *job.mutable_spec()->mutable_payload() = std::move(payload);
  if (result) job.set_result(std::move(*result));
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
      ended_(options_.ended_cache),
      events_(store),
      dispatcher_(loop, options_.starvation_every, [this] { Dispatch(); }),
      retention_(absl::FromChrono(options_.event_retention)),
      bulk_(std::make_unique<BulkOperations>(*this, metrics_, options_.bulk,
                                             [this] { return absl::StrCat("bulk-", new_job_id_()); })) {}

BrokerEngine::~BrokerEngine() {
  if (sweep_timer_ != 0) loop_.CancelTimer(sweep_timer_);
  for (auto& [id, rec] : jobs_) {
    if (rec.lease_timer != 0) loop_.CancelTimer(rec.lease_timer);
    if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
  }
}

runtime::Task<absl::Status> BrokerEngine::Start() {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  absl::StatusOr<std::unique_ptr<store::JobRecovery>> recovery = co_await store_.Recover(options_.recovery);
  if (!recovery.ok()) co_return recovery.status();
  store::RecoveredState state = std::move((*recovery)->state());
  events_.Recovered(state.last_event_sequence);
  if (absl::Status s = dispatcher_.Recover(state.meta); !s.ok()) co_return s;
  absl::flat_hash_set<std::string> recorded;  // queues with a settings record
  for (const auto& [name, q] : dispatcher_.queues()) recorded.insert(name);
  // Page by page: what recovery holds beyond the engine's own state is one page.
  for (;;) {
    absl::StatusOr<std::vector<Job>> page = co_await (*recovery)->NextJobs();
    if (!page.ok()) co_return page.status();
    if (page->empty()) break;
    for (Job& job : *page) RecoverJob(std::move(job));
  }
  recovery->reset();  // releases the store's snapshot
  for (const store::ReadyEntry& e : state.ready) {
    auto job = jobs_.find(e.job_id);
    dispatcher_.Queue(e.queue).ready.Push(
        {e.priority, e.sequence, e.job_id, job == jobs_.end() ? std::string() : job->second.job.spec().kind()});
  }
  Pending p;
  for (const auto& [name, q] : dispatcher_.queues()) {
    if (!recorded.contains(name)) StageQueueSettings(name, p);
  }
  for (auto& [id, rec] : jobs_) {
    if (rec.job.state() != cohort::v1::JOB_STATE_RUNNING) continue;
    LoseAttempt(rec, MakeError("lease_expired", "the broker restarted while the attempt ran"),
                cohort::v1::TRANSITION_REASON_LEASE_EXPIRED, p);
  }
  for (auto& [id, rec] : jobs_) ArmDeadline(rec, p);
  if (!p.batch.empty()) co_await Persist(std::move(p));
  co_await bulk_->Recover(std::move(state.bulk_operations));  // resumes unfinished ones
  ExportAllQueueGauges();
  sweep_timer_ = loop_.CallLater(options_.sweep_interval, [this] { Sweep(); });
  co_return absl::OkStatus();
}

void BrokerEngine::RecoverJob(Job job) {
  std::string id = job.id();
  if (!job.spec().idempotency_key().empty()) idempotency_[job.spec().idempotency_key()] = id;
  if (job.state() == cohort::v1::JOB_STATE_RUNNING) ++dispatcher_.Queue(job.spec().queue()).running;
  // A queue exists while it has jobs; one from before queues were recorded gets its
  // record in Start, so that it outlives its jobs as a created queue does.
  dispatcher_.Queue(job.spec().queue());
  index_.Add(job);
  if (common::IsTerminal(job.state())) {
    NoteEnded(job);
    ended_.Insert(std::move(job), /*cache=*/false);  // durable as it is: a summary is enough
    return;
  }
  dependents_.Add(job);
  jobs_[id].job = std::move(job);
}

runtime::Task<void> BrokerEngine::Stop() {
  co_await bulk_->Stop();
  stopping_ = true;
  if (sweep_timer_ != 0) loop_.CancelTimer(sweep_timer_);
  sweep_timer_ = 0;
  dispatcher_.Stop();
  co_await gate_.Close();
}

// ---- Retention ------------------------------------------------------------------------

void BrokerEngine::NoteEnded(const Job& job) {
  retention_.NoteEnded(job.has_expire_time() ? FromProto(job.expire_time()) : Now(), job.id());
}

void BrokerEngine::Sweep() {
  sweep_timer_ = 0;
  if (stopping_) return;
  Pending p;
  const absl::Time now = Now();
  std::size_t expired = 0;
  for (const std::string& id : retention_.TakeExpired(now)) {
    auto it = jobs_.find(id);
    const EndedJob* summary = it == jobs_.end() ? ended_.Find(id) : nullptr;
    if (it == jobs_.end() && summary == nullptr) continue;
    // JobBatch::DeleteJob of a finished job needs its id and state only.
    const Job job = summary != nullptr ? summary->Probe(id) : it->second.job;
    // Retried since it ended (and perhaps ended again, later): not this expiry's.
    if (!common::IsTerminal(job.state()) || FromProto(job.expire_time()) > now) continue;
    Forget(job);
    MakeRoom(p, job.id().size() + kTransitionOverheadBytes, kTransitionRecords);
    p.batch.DeleteJob(job);
    if (summary != nullptr) {
      ended_.Erase(id);
    } else {
      jobs_.erase(it);
    }
    ++expired;
  }
  const std::int64_t trim_below = retention_.TrimBefore(now);
  if (trim_below > 0) {
    MakeRoom(p, 0, 1);
    p.batch.TrimEventsBefore(trim_below);
  }
  if (expired > 0 || trim_below > 0) {
    kLog.Debug("retention sweep", {{"expired_jobs", expired}, {"events_trimmed_below", trim_below}});
  }
  if (!p.batch.empty()) Persist(std::move(p));
  sweep_timer_ = loop_.CallLater(options_.sweep_interval, [this] { Sweep(); });
}

// ---- State changes ----------------------------------------------------------------------

void BrokerEngine::MakeRoom(Pending& p, std::size_t bytes, std::size_t records) {
  const store::BatchLimits limits = store_.limits();
  if (p.batch.empty() ||
      (p.batch.bytes() + bytes <= limits.max_bytes && p.batch.records() + records <= limits.max_records)) {
    return;
  }
  Pending full;
  full.batch = std::exchange(p.batch, store::JobBatch());
  full.ended = std::exchange(p.ended, {});
  full.queues = std::exchange(p.queues, {});
  full.sequence = std::exchange(p.sequence, 0);
  full.removed = std::exchange(p.removed, {});
  Persist(std::move(full));
}

void BrokerEngine::Transition(JobRecord& rec, JobState to, TransitionReason reason, Pending& p) {
  MakeRoom(p, TransitionBytes(rec.job), kTransitionRecords);
  Job& job = rec.job;
  const JobState from = job.state();
  std::optional<Job> previous;  // the stored version's index fields; a new job has none
  if (from != cohort::v1::JOB_STATE_UNSPECIFIED) previous = IndexKeysOf(job);
  const absl::Time now = Now();
  const std::int64_t sequence = events_.Assign();
  if (from == cohort::v1::JOB_STATE_UNSPECIFIED) dependents_.Add(job);
  job.set_state(to);
  if (from == cohort::v1::JOB_STATE_UNSPECIFIED) {
    index_.Add(job);
  } else {
    index_.Move(job, from);
  }
  job.set_sequence(sequence);
  p.sequence = sequence;
  p.queues.insert(job.spec().queue());
  *job.mutable_update_time() = ToProto(now);
  if (to == cohort::v1::JOB_STATE_QUEUED && from != to) {
    *job.mutable_queue_time() = ToProto(now);
    Enqueue(rec);
  }
  if (common::IsTerminal(to) && !common::IsTerminal(from)) {
    *job.mutable_end_time() = ToProto(now);
    absl::Duration ttl = job.spec().has_result_ttl() ? Bounded(FromProto(job.spec().result_ttl()))
                                                     : absl::FromChrono(options_.result_ttl);
    if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
    rec.deadline_timer = 0;
    *job.mutable_expire_time() = ToProto(now + ttl);
    NoteEnded(job);
    p.ended.push_back(job.id());
    metrics_.Ended(job.spec().queue(), cohort::v1::JobState_Name(to));
    if (to == cohort::v1::JOB_STATE_FAILED) {
      // The code names the failure; its message may quote the job's data, so it stays out.
      kLog.Info("job failed", {{"job_id", job.id()},
                               {"queue", job.spec().queue()},
                               {"kind", job.spec().kind()},
                               {"code", job.error().code()},
                               {"attempt", job.attempt()}});
    }
  }
  // Encoded once: the stored job, and the event's copy of it (the same bytes unless it
  // has a payload or a result).
  std::string stored = job.SerializeAsString();
  cohort::v1::JobEvent event;
  event.set_sequence(sequence);
  *event.mutable_time() = ToProto(now);
  event.set_job_id(job.id());
  event.set_from_state(from);
  event.set_to_state(to);
  event.set_reason(reason);
  const std::optional<std::string> summary = EncodedSummary(job);
  p.batch.AppendEvent(event, summary ? *summary : stored);
  p.batch.PutJob(job, previous ? &*previous : nullptr, std::move(stored));
}

void BrokerEngine::Enqueue(JobRecord& rec) {
  const cohort::v1::JobSpec& spec = rec.job.spec();
  dispatcher_.Queue(spec.queue()).ready.Push({spec.priority(), rec.job.sequence(), rec.job.id(), spec.kind()});
}

void BrokerEngine::Remove(std::map<std::string, JobRecord>::iterator it, Pending& p) {
  JobRecord& rec = it->second;
  Job& job = rec.job;
  MakeRoom(p, TransitionBytes(job), kTransitionRecords);
  const absl::Time now = Now();
  const std::int64_t sequence = events_.Assign();
  p.sequence = sequence;
  p.queues.insert(job.spec().queue());
  if (job.state() == cohort::v1::JOB_STATE_QUEUED) {
    dispatcher_.Queue(job.spec().queue()).ready.Remove(job.spec().priority(), job.sequence());
  }
  if (rec.deadline_timer != 0) loop_.CancelTimer(rec.deadline_timer);
  rec.deadline_timer = 0;
  p.batch.DeleteJob(job);  // the in-memory job is its stored version (with this batch)
  cohort::v1::JobEvent event;
  event.set_sequence(sequence);
  *event.mutable_time() = ToProto(now);
  event.set_job_id(job.id());
  event.set_from_state(job.state());
  event.set_to_state(cohort::v1::JOB_STATE_UNSPECIFIED);
  event.set_reason(cohort::v1::TRANSITION_REASON_DELETED);
  const std::int64_t stored_sequence = job.sequence();
  job.set_sequence(sequence);  // the event's copy carries the deletion's sequence
  const std::optional<std::string> summary = EncodedSummary(job);
  p.batch.AppendEvent(event, summary ? *summary : job.SerializeAsString());
  job.set_sequence(stored_sequence);
  Forget(job);
  p.removed.push_back(jobs_.extract(it));
}

void BrokerEngine::Forget(const Job& job) {
  if (auto k = idempotency_.find(job.spec().idempotency_key()); k != idempotency_.end() && k->second == job.id()) {
    idempotency_.erase(k);
  }
  dependents_.Remove(job);
  index_.Remove(job);
}

void BrokerEngine::Compact(std::map<std::string, JobRecord>::iterator it) {
  const JobRecord& rec = it->second;
  if (!common::IsTerminal(rec.job.state()) || rec.job.sequence() > events_.committed() || !rec.watchers.empty() ||
      rec.lease_timer != 0 || rec.deadline_timer != 0) {
    return;  // not ended, a later change not yet durable, or still watched or timed
  }
  dependents_.Remove(rec.job);  // only unfinished dependents matter (DeleteJob, DeleteQueue)
  ended_.Insert(std::move(it->second.job), /*cache=*/true);
  jobs_.erase(it);
}

bool BrokerEngine::Revive(const Job& job) {
  const EndedJob* summary = ended_.Find(job.id());
  if (summary == nullptr || summary->sequence != job.sequence() || jobs_.contains(job.id())) return false;
  ended_.Erase(job.id());
  dependents_.Add(job);
  jobs_[job.id()].job = job;
  return true;
}

std::optional<JobState> BrokerEngine::StateOf(const std::string& id) const {
  if (auto it = jobs_.find(id); it != jobs_.end()) return it->second.job.state();
  if (const EndedJob* e = ended_.Find(id)) return e->state;
  return std::nullopt;
}

std::string BrokerEngine::LastJobId() const {
  std::string last = jobs_.empty() ? std::string() : jobs_.rbegin()->first;
  if (std::optional<std::string> e = ended_.Last(); e && *e > last) last = *std::move(e);
  return last;
}

runtime::Task<absl::StatusOr<Job>> BrokerEngine::CurrentJob(std::string id) {
  while (true) {
    if (auto it = jobs_.find(id); it != jobs_.end()) co_return it->second.job;
    const EndedJob* summary = ended_.Find(id);
    if (summary == nullptr) co_return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
    if (const Job* cached = ended_.Cached(id)) co_return *cached;
    const std::int64_t sequence = summary->sequence;
    absl::StatusOr<Job> stored = co_await store_.GetJob(id);
    summary = ended_.Find(id);
    if (summary == nullptr || summary->sequence != sequence || jobs_.contains(id)) continue;  // changed meanwhile
    if (!stored.ok()) co_return stored.status();
    if (stored->sequence() != sequence) {
      // The summary is of a durable version, and nothing changes a summarized job
      // without reviving it: a mismatch is a broken store.
      co_return absl::InternalError(absl::StrCat("job ", id, ": the store holds version ", stored->sequence(),
                                                 ", not the durable version ", sequence));
    }
    ended_.Cache(*stored);
    co_return stored;
  }
}

runtime::Task<bool> BrokerEngine::Load(std::string id) {
  while (true) {
    if (jobs_.contains(id)) co_return true;
    if (!ended_.contains(id)) co_return false;
    absl::StatusOr<Job> job = co_await CurrentJob(id);
    if (!job.ok()) {
      if (job.status().code() == absl::StatusCode::kNotFound) co_return false;
      kLog.Error("cannot read a finished job", {{"job_id", id}, {"status", job.status().ToString()}});
      std::abort();  // crash-only, as a failed commit: a restart reads the store again
    }
    if (jobs_.contains(id) || Revive(*job)) co_return true;
  }
}

void BrokerEngine::StageQueueSettings(const std::string& name, Pending& p) {
  auto [key, value] = dispatcher_.SettingsRecord(name);
  p.batch.PutMeta(std::move(key), std::move(value));
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
  // Not detached: the gate holder keeps Stop() waiting until it is done.
  return runtime::Spawn(loop_, CommitAndApply(std::move(p), std::move(*holder)));
}

runtime::Task<void> BrokerEngine::CommitAndApply(Pending p, runtime::Gate::Holder holder) {
  const runtime::TimePoint start = loop_.Now();
  const double records = static_cast<double>(p.batch.records());
  absl::Status status = co_await store_.Commit(std::move(p.batch));
  if (!status.ok()) {
    // The in-memory state is ahead of the disk; only a restart can reconcile them.
    kLog.Error("commit failed, stopping", {{"status", status.ToString()}});
    std::abort();
  }
  metrics_.Commit(records, std::chrono::duration<double>(loop_.Now() - start).count());
  if (p.sequence > 0) retention_.NoteCommit(Now(), p.sequence);
  events_.Committed(p.sequence);
  for (auto& [token, msg] : p.sends) {
    if (ExecutorSession* s = sessions_.Find(token)) s->channel->Send(std::move(msg));
  }
  for (const std::string& id : p.ended) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    while (JobWatcher* w = it->second.watchers.PopFront()) w->OnJobEnded(it->second.job);
    Compact(it);
  }
  for (auto& node : p.removed) {
    // A deleted job never ends; to its waiters it ends as a cancelled task does.
    Job gone = std::move(node.mapped().job);
    if (!common::IsTerminal(gone.state())) {
      gone.set_state(cohort::v1::JOB_STATE_CANCELLED);
      *gone.mutable_error() = MakeError("deleted", "the job was deleted before it ended");
    }
    while (JobWatcher* w = node.mapped().watchers.PopFront()) w->OnJobEnded(gone);
  }
  for (const std::string& name : p.queues) ExportQueueGauges(name);
}

void BrokerEngine::ExportQueueGauges(const std::string& name) {
  const QueueState* q = dispatcher_.Find(name);
  if (q == nullptr) return;  // no job of it was ever queued (e.g. only PENDING ones)
  // A time, not an age: an age set here would freeze while the queue does not change.
  std::optional<absl::Time> oldest_queued;
  if (const ReadyQueue::Entry* e = q->ready.Oldest()) {
    auto it = jobs_.find(e->job_id);
    if (it != jobs_.end()) oldest_queued = FromProto(it->second.job.queue_time());
  }
  metrics_.QueueGauges(name, static_cast<double>(q->ready.size()), static_cast<double>(q->running), oldest_queued);
  metrics_.Unserved(name, static_cast<double>(UnservedIn(name, *q)));
}

void BrokerEngine::ExportAllQueueGauges() {
  for (const auto& [name, q] : dispatcher_.queues()) ExportQueueGauges(name);
}

std::int64_t BrokerEngine::UnservedIn(const std::string& name, const QueueState& q) const {
  const QueueServing& serving = sessions_.ServingOf(name);
  if (serving.every_kind) return 0;
  std::int64_t unserved = 0;
  for (const auto& [kind, n] : q.ready.DepthByKind()) {
    if (!serving.Serves(kind)) unserved += n;
  }
  return unserved;
}

bool BrokerEngine::Unserved(const Job& job) const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  return job.state() == cohort::v1::JOB_STATE_QUEUED && !sessions_.ServingOf(job.spec().queue()).Serves(job.spec().kind());
}

}  // namespace cohort::broker
