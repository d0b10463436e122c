#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "libs/runtime/runtime.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/executor.pb.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/bulk_operations.h"
#include "services/broker/dependents.h"
#include "services/broker/dispatcher.h"
#include "services/broker/ended_jobs.h"
#include "services/broker/event_log.h"
#include "services/broker/executor_sessions.h"
#include "services/broker/job_index.h"
#include "services/broker/job_validation.h"
#include "services/broker/retention.h"

namespace cohort::broker {

using runtime::Duration;

// Everything an operator may tune. Each field is a flag of cohort-broker.
struct BrokerOptions {
  SpecLimits spec_limits;
  std::size_t max_submit_batch = 10'000;   // specs per Submit
  std::size_t max_list_page = 1'000;       // jobs per ListJobs page
  Duration lease = std::chrono::seconds(30);            // an attempt's lease, renewed by heartbeats
  Duration heartbeat_interval = std::chrono::seconds(5);  // told to executors in Welcome
  int starvation_every = 16;               // see ReadyQueue
  // Retention: a terminal job is deleted this long after it ended, unless its spec sets
  // result_ttl; events older than event_retention are trimmed. Checked every
  // sweep_interval.
  Duration result_ttl = std::chrono::hours(24 * 7);
  Duration event_retention = std::chrono::hours(24);
  Duration sweep_interval = std::chrono::seconds(1);
  std::int32_t max_executor_capacity = 10'000;
  BulkOptions bulk;  // bulk operations: records kept, batch sizes
  // Queues held at most: a CreateQueue or Submit that would create one more is
  // RESOURCE_EXHAUSTED.
  std::size_t max_queues = 1'000;
  // Distinct job kinds held at most (a kind counts while any job of it is kept): a
  // Submit that would bring one more is RESOURCE_EXHAUSTED.
  std::size_t max_kinds = 1'000;
  // Full records of finished jobs kept in memory (the most recently finished or read);
  // the others are read from the store when asked for (GetJob, ListJobs, waits).
  EndedJobs::CacheLimits ended_cache;
  // Start reads the stored jobs in pages of this size: recovery holds the engine's
  // state plus one page of parsed jobs, whatever the number of jobs stored.
  store::RecoverOptions recovery;
};

// Notified once when a job reaches a terminal state (after that state is durable).
// Owned by the watcher; unlinks itself when destroyed.
class JobWatcher : public runtime::ListNode {
 public:
  virtual void OnJobEnded(const cohort::v1::Job& job) = 0;

 protected:
  ~JobWatcher() = default;
};

// The broker's logic on one event loop: the job table, and the one way a job changes.
//
// Every state change goes through Transition, which applies it in memory at once (so
// later operations see it) and stages it (job + indexes + event) in one JobBatch with
// what depends on it (the outbox: sends, watcher wake-ups, gauges); Persist
// group-commits the batch, and only once it is durable are those sent. A failed
// commit stops the process: the broker is crash-only, and a restart recovers exactly
// what was acknowledged.
//
// The state is split by owner: the engine keeps the live jobs (with their lease and
// deadline timers and watchers), the finished ones as compact summaries (EndedJobs:
// once a job's end is durable its full record is read from the store when asked for,
// through a small cache) and the idempotency keys; Dispatcher the queues and
// whose turn it is; ExecutorSessions the connected streams and their credits;
// Retention the expiry and trim bookkeeping; EventLog the sequence numbers and the
// readers of committed events. Its code is in four files: broker_engine.cc (start,
// stop, Transition and Remove, the commit outbox, the sweep), broker_engine_clients.cc
// (client and scheduler calls), job_operations.cc (retry, delete and the bulk batches
// of operators) and broker_engine_executors.cc (sessions, dispatch, leases, attempt
// outcomes, deadlines).
//
// Loop thread only; every method must be called from a task on `loop`.
class BrokerEngine {
 public:
  BrokerEngine(runtime::EventLoop& loop, store::JobStore& store, BrokerMetrics& metrics, BrokerOptions options,
               std::function<std::string()> new_job_id);
  ~BrokerEngine();

  // Rebuilds the in-memory state from the store. Attempts that were RUNNING when the
  // broker stopped have lost their executor: they are requeued (or failed when their
  // attempts are spent), as a lost lease. Deadlines are re-armed from the stored specs
  // (a job already past its deadline fails now), and a queue rate stored out of range
  // is clamped into it.
  runtime::Task<absl::Status> Start();
  // Stops dispatching and waits for commits in flight.
  runtime::Task<void> Stop();

  // Asked before a client's write (Submit, CancelJob, ReleaseJobs, queue settings) is
  // staged: a non-OK status (DiskGuard's RESOURCE_EXHAUSTED) is returned as it is and
  // nothing is written. Transitions of work already accepted are never asked.
  void SetWriteAdmission(std::function<absl::Status()> admit) { admit_write_ = std::move(admit); }

  // Wall time, from the loop's clock (runtime::Clock::SystemNow): every time the engine
  // stores or sends (a job's times, its expiry, a retry's not_before, a run_at's
  // release, events and their trimming, bulk records) is read here, never from
  // absl::Now(), so a ManualClock moves TTLs, backoff and retention as it moves leases.
  absl::Time Now() const { return loop_.clock().SystemNow(); }

  // ---- Clients ------------------------------------------------------------------------
  // All-or-nothing: every spec is validated before anything is written. Returns one id
  // per spec once they are durable; a spec whose idempotency key is known returns the
  // existing job's id. A spec whose deadline has already passed still gets a job, which
  // is FAILED ("deadline_exceeded") in the same commit and never runs.
  // `principal` (who submitted, "" without authorization) is recorded as submitted_by.
  using SpecList = google::protobuf::RepeatedPtrField<cohort::v1::JobSpec>;
  runtime::Task<absl::StatusOr<std::vector<std::string>>> Submit(SpecList specs, bool validate_only,
                                                                 std::string principal = "");
  // The same from a vector (tests and tools; the service hands over its request's list).
  runtime::Task<absl::StatusOr<std::vector<std::string>>> Submit(std::vector<cohort::v1::JobSpec> specs,
                                                                 bool validate_only, std::string principal = "");
  // The job as it is now, or NOT_FOUND. A finished job's record may be read from the
  // store (then cached). What GetJobRequest answers.
  runtime::Task<absl::StatusOr<cohort::v1::Job>> ReadJob(std::string id);
  // The job as it is now if its whole record is in memory (a live job, or a finished
  // one in the cache), without suspending; NOT_FOUND if unknown, UNAVAILABLE for a
  // finished job held as a summary only (ReadJob reads it). For tests and checks.
  absl::StatusOr<cohort::v1::Job> GetJob(const std::string& id);
  // One page of jobs (without payload and result) in id order, as broker.proto says.
  // Candidates come from the indexes; finished ones the summary cannot decide on, and
  // those returned, are read from the store. `sequence` is the last durable event when
  // the call began: every change up to it is reflected in the page.
  runtime::Task<absl::StatusOr<cohort::v1::ListJobsResponse>> ListJobs(cohort::v1::ListJobsRequest request);
  runtime::Task<absl::StatusOr<cohort::v1::CancelJobResponse>> CancelJob(std::string id);
  // The scheduler's call: PENDING -> QUEUED (or failed/cancelled for a failed parent),
  // fenced by attempt; releases that no longer apply are skipped.
  runtime::Task<absl::StatusOr<std::vector<std::string>>> ReleaseJobs(cohort::v1::ReleaseJobsRequest request);

  // ---- Operators (job_operations.cc) -------------------------------------------------
  // RetryJob and DeleteJob as broker.proto says. Retry: FAILED_PRECONDITION for a
  // SUCCEEDED job, one whose deadline has passed, or one that never ran and whose
  // parent is gone; a job already running again (or another attempt than
  // `expected_attempt` > 0) is left alone (retried=false). Delete: FAILED_PRECONDITION
  // for a RUNNING job or one that unfinished jobs depend on; its waiters see it end
  // CANCELLED with Error.code "deleted". Both answer once durable.
  runtime::Task<absl::StatusOr<cohort::v1::RetryJobResponse>> RetryJob(std::string id, std::int32_t expected_attempt);
  runtime::Task<absl::StatusOr<cohort::v1::DeleteJobResponse>> DeleteJob(std::string id);

  // ---- Bulk operations: BulkOperations drives them through the calls below ----------
  BulkOperations& bulk_operations() { return *bulk_; }
  // What SetWriteAdmission's function says now.
  absl::Status AdmitWrite() const { return admit_write_(); }
  // The largest job id now; "" when there is no job.
  std::string LastJobId() const;
  // Counts the jobs `matcher` accepts among those with ids after `after`, looking at
  // most at `max_examined` of its candidates (NextCandidate). Changes nothing. A
  // finished job whose summary cannot decide (large labels) is read from the store.
  runtime::Task<BulkStep> CountMatching(const JobMatcher& matcher, std::string after, std::size_t max_examined);
  // One batch of a bulk operation: looks at the jobs with ids in (after, last] in id
  // order and applies `action` (as CancelJob, RetryJob, DeleteJob would) to those
  // `matcher` accepts, until options.bulk.batch_jobs matched, options.bulk.scan_jobs
  // looked at, or the store's batch limits are near. If any matched (or the scope is
  // exhausted), stages `record(step)` with those changes and returns once that one
  // commit is durable; otherwise stages nothing.
  runtime::Task<BulkStep> ApplyBulkStep(cohort::v1::BulkAction action, const JobMatcher& matcher, std::string after,
                                        std::string last, std::function<cohort::v1::BulkOperation(const BulkStep&)> record);
  // Stores the bulk records of `put` and deletes those of `erase`, in one commit.
  runtime::Task<void> PersistBulkRecords(std::vector<cohort::v1::BulkOperation> put, std::vector<std::string> erase);

  // ---- Queues: a queue exists from CreateQueue or the first Submit to it until
  // DeleteQueue; at most options.max_queues of them (see broker.proto) ----
  cohort::v1::ListQueuesResponse ListQueues() const;
  // Creates the queue (paused, with `limits`) once durable; an existing queue is left
  // as it is (already_existed). INVALID_ARGUMENT for a malformed name or limits,
  // RESOURCE_EXHAUSTED at max_queues.
  runtime::Task<absl::StatusOr<cohort::v1::CreateQueueResponse>> CreateQueue(cohort::v1::CreateQueueRequest request);
  // Deletes the queue and its settings once durable. FAILED_PRECONDITION, with nothing
  // deleted, if it holds jobs and !delete_jobs, or with delete_jobs if one of them is
  // RUNNING or a parent of an unfinished job of another queue; otherwise its jobs are
  // deleted first (DELETED events, as DeleteJob). NOT_FOUND for an unknown queue.
  runtime::Task<absl::StatusOr<cohort::v1::DeleteQueueResponse>> DeleteQueue(std::string queue, bool delete_jobs);
  // Pausing stops dispatch from the queue (running jobs go on); durable. NOT_FOUND
  // for an unknown queue (nothing is created).
  runtime::Task<absl::Status> PauseQueue(std::string queue, bool paused);
  // Dispatcher::CheckLimits's INVALID_ARGUMENT, NOT_FOUND for an unknown queue, or the
  // queue's limits once durable.
  runtime::Task<absl::StatusOr<cohort::v1::QueueLimits>> SetQueueLimits(std::string queue,
                                                                         cohort::v1::QueueLimits limits);
  cohort::v1::ListExecutorsResponse ListExecutors() const;
  // True if `job` is QUEUED and no connected executor takes both its queue and its
  // kind (GetJobResponse.unserved): nothing runs it until one connects.
  bool Unserved(const cohort::v1::Job& job) const;

  // Registers `watcher` for job `id`. Returns the job if it has already ended (the
  // watcher is then not registered), nullopt if it is registered, NOT_FOUND if unknown.
  // A finished job's record may be read from the store first.
  runtime::Task<absl::StatusOr<std::optional<cohort::v1::Job>>> WatchJob(std::string id, JobWatcher* watcher);
  // True if `id` is a known job.
  bool HasJob(const std::string& id) const { return jobs_.contains(id) || ended_.contains(id); }
  // Finished jobs held as summaries only (their records on disk), for tests and metrics.
  std::size_t summarized_jobs() const { return ended_.size(); }
  // Job ids ListJobs has examined since start: what its filters cost (tests check that
  // an indexed filter examines only its candidates).
  std::uint64_t listing_visited() const { return listing_visited_; }
  // The event log: its last durable sequence, and readers of committed events (Watch).
  EventLog& events() { return events_; }
  std::int64_t committed_sequence() const { return events_.committed(); }

  // ---- Executors ----------------------------------------------------------------------
  // Leases belong to the executor id, not to a stream: an attempt is leased to
  // (Job.executor_id, Job.attempt) until it ends or its lease timer runs out, and only
  // a Heartbeat or Hello listing it renews that timer.
  //
  // A new Connect stream announced itself. Replaces an earlier session with the same
  // executor id: that stream is ended with ABORTED and its attempts keep their leases,
  // as after a broken stream. Each attempt in hello.running still leased to this
  // executor id is bound to the new session and its lease renewed (and its Cancel sent again if a cancel was requested meanwhile); the
  // others get a Cancel. Returns a session token. `principal` is who the stream's
  // credential speaks for ("" without authorization): while a session for the id is
  // connected under another principal, the new stream is refused (PERMISSION_DENIED),
  // not a takeover.
  absl::StatusOr<std::uint64_t> Attach(const cohort::v1::ExecutorMessage::Hello& hello, ExecutorChannel* channel,
                                       const std::string& principal = "");
  // A message after Hello. INVALID_ARGUMENT ends the stream. A CompleteBatch is its
  // Completes in order, staged with the Assigns they enable in one commit. A Heartbeat is always
  // answered with a LeaseExtended listing the attempts still leased to this executor id
  // (possibly none, so the executor's watchdog hears the broker), and Cancel for the
  // others. Progress and Complete are accepted for any attempt still
  // leased to this executor id, whichever of its streams it was assigned on.
  absl::Status OnExecutorMessage(std::uint64_t session, const cohort::v1::ExecutorMessage& message);
  // The stream ended. If it broke (or was cancelled), its attempts keep their leases
  // until their timers run out, so that the executor can reconnect and keep them; then
  // they are lost ("lease_expired": requeued with attempt + 1, or failed when attempts
  // are spent). If the executor half-closed it gracefully (a drain), it had reported
  // everything it ran, so what it still holds are assignments it never started: they go
  // back to their queue without using up an attempt.
  void Detach(std::uint64_t session, bool graceful = false);
  // The broker is shutting down: sends Drain on every connected stream now, and no
  // Assign is staged afterwards (on any stream). Idempotent.
  void DrainExecutors();

 private:
  struct JobRecord {
    cohort::v1::Job job;
    runtime::TimerId lease_timer = 0;
    runtime::TimerId deadline_timer = 0;  // while not terminal and spec.deadline is set
    runtime::IntrusiveList<JobWatcher> watchers;
  };
  // A batch being built, with what to do once it is durable: the commit outbox.
  struct Pending {
    store::JobBatch batch;
    std::vector<std::pair<std::uint64_t, cohort::v1::BrokerMessage>> sends;  // by session token
    std::vector<std::string> ended;           // jobs whose watchers to notify
    absl::flat_hash_set<std::string> queues;  // queues whose gauges may have changed
    std::int64_t sequence = 0;                // last event sequence staged in `batch`
    // Jobs deleted in `batch`, out of jobs_: their watchers are told once it is durable.
    std::vector<std::map<std::string, JobRecord>::node_type> removed;
  };

  // ---- broker_engine.cc: the choke-point ----
  // Applies a transition in memory and stages it (job + indexes + event) in `p`,
  // after MakeRoom for it.
  void Transition(JobRecord& rec, cohort::v1::JobState to, cohort::v1::TransitionReason reason, Pending& p);
  void Enqueue(JobRecord& rec);
  // Deletes a job that is not RUNNING for good: stages its deletion and a DELETED event
  // (to_state UNSPECIFIED, the job as it was) in `p`, takes it out of its queue and
  // jobs_, and tells its watchers once `p` is durable (as CANCELLED, "deleted").
  void Remove(std::map<std::string, JobRecord>::iterator it, Pending& p);
  // Drops what the engine keeps of a job beyond its record: its idempotency key and
  // its place in dependents_ (deletion and expiry).
  void Forget(const cohort::v1::Job& job);
  // A finished job whose end is durable (and that nothing watches or times) leaves
  // jobs_ for ended_ (a summary, its record cached); others stay.
  void Compact(std::map<std::string, JobRecord>::iterator it);
  // The state of job `id`, wherever it is kept; nullopt if unknown.
  std::optional<cohort::v1::JobState> StateOf(const std::string& id) const;
  // Job `id` as it is now: from jobs_, the cache of ended_, or the store (a record read
  // while the job changed is read again). NOT_FOUND if unknown.
  runtime::Task<absl::StatusOr<cohort::v1::Job>> CurrentJob(std::string id);
  // Brings a summarized job back into jobs_ with its full record `job` (the version
  // summarised: same sequence), to change it. False (nothing done) if the summary is of
  // another version or gone.
  bool Revive(const cohort::v1::Job& job);
  // Makes job `id` a record of jobs_ if it is known, reading a summarized one from the
  // store; false if it is unknown. Returns with jobs_ holding it (no suspension between).
  runtime::Task<bool> Load(std::string id);
  // If staging `bytes` more in `records` more records could take `p`'s batch over the
  // store's BatchLimits, persists what `p` holds now (its batch, ended jobs and queue
  // gauges) and leaves `p` an empty batch. `p`'s sends stay for the later commit, which
  // is durable only after this one. So no sequence of calls stages a batch the store
  // refuses; Submit, which must be one commit, is refused beforehand when it could not
  // fit (see batch_budget.h).
  void MakeRoom(Pending& p, std::size_t bytes, std::size_t records);
  // Starts committing `p` now (so commits reach the store in staging order), then
  // sends and notifies what depends on it. Fatal if the commit fails. The returned
  // handle may be awaited or dropped; Stop() waits for it either way.
  runtime::TaskHandle<void> Persist(Pending p);
  runtime::Task<void> CommitAndApply(Pending p, runtime::Gate::Holder holder);
  void ExportQueueGauges(const std::string& name);
  // QUEUED jobs of `q` whose kind no connected executor of the queue runs.
  std::int64_t UnservedIn(const std::string& name, const QueueState& q) const;
  // After an executor came or went: what it serves changed for every queue.
  void ExportAllQueueGauges();
  // Deletes expired jobs and trims old events; re-arms itself.
  void Sweep();
  void NoteEnded(const cohort::v1::Job& job);
  // Start: one stored job into the in-memory state (indexes, summaries, records).
  void RecoverJob(cohort::v1::Job job);
  void StageQueueSettings(const std::string& name, Pending& p);
  // The first id after `after` ("" for the first) of a job that may match `matcher`,
  // from the index ListJobs walks (jobs outside it cannot match); nullopt at the end.
  std::optional<std::string> NextCandidate(const JobMatcher& matcher, const std::string& after) const;
  // RESOURCE_EXHAUSTED if creating the queues `fresh` (none of which exists) would
  // take the broker over options_.max_queues.
  absl::Status CheckQueueRoom(const absl::flat_hash_set<std::string>& fresh) const;
  // RESOURCE_EXHAUSTED if the kinds `fresh` (no job of which is held) would take the
  // broker over options_.max_kinds.
  absl::Status CheckKindRoom(const absl::flat_hash_set<std::string>& fresh) const;
  // NOT_FOUND naming the queue unless it exists.
  absl::Status CheckQueueExists(const std::string& name) const;

  // ---- job_operations.cc: one job's operator actions, staged in `p` ----
  // One job of a bulk operation: true if `action` changed it (staged in `p`), false if
  // its rule refused it. `it` may be erased (a delete).
  bool ApplyBulkAction(cohort::v1::BulkAction action, std::map<std::string, JobRecord>::iterator it, Pending& p);
  // FAILED or CANCELLED -> QUEUED or PENDING with a new attempt budget: true. false
  // when it has not ended (nothing staged); FAILED_PRECONDITION as RetryJob says.
  absl::StatusOr<bool> RetryInto(JobRecord& rec, Pending& p);
  // OK if DeleteJob may delete it; FAILED_PRECONDITION as DeleteJob says.
  absl::Status CheckDeletable(const JobRecord& rec) const;
  // As CancelJob on a job that has not ended: CANCELLED now, or a cancel requested of
  // its running attempt (the executor is told once `p` is durable). False if nothing
  // was left to do (a cancel already requested).
  bool CancelInto(JobRecord& rec, Pending& p);

  // ---- broker_engine_executors.cc: attempts, leases, deadlines, dispatch ----
  void LoseAttempt(JobRecord& rec, cohort::v1::Error error, cohort::v1::TransitionReason reason, Pending& p);
  void ReturnUnstarted(JobRecord& rec, Pending& p);
  void FinishAttempt(JobRecord& rec, const cohort::v1::ExecutorMessage::Complete& complete, Pending& p);
  // One Complete from session `s`: its credit granted and, unless it is fenced (an
  // attempt no longer leased to s's executor id: counted and ignored), its attempt
  // unbound and finished in `p`.
  void CompleteInto(ExecutorSession& s, const cohort::v1::ExecutorMessage::Complete& c, Pending& p);
  // Cancels the job's lease timer and counts its attempt out of its queue's running.
  void EndLease(JobRecord& rec);
  void ArmLease(JobRecord& rec);
  void OnLeaseExpired(const std::string& id);
  // True if `rec` is RUNNING as `attempt` leased to `executor_id`.
  static bool LeasedTo(const JobRecord& rec, const std::string& executor_id, std::int32_t attempt);
  // Arms the job's deadline timer, or fails it in `p` if its deadline has passed.
  void ArmDeadline(JobRecord& rec, Pending& p);
  void OnDeadline(const std::string& id);
  // Ends a non-terminal job FAILED with "deadline_exceeded" (a running attempt is
  // ended and its executor told to stop).
  void ExceedDeadline(JobRecord& rec, Pending& p);
  // Leases queued jobs to executors with credit, staging the transitions in `p`, so
  // that a change and the dispatches it enables share one commit (one fsync).
  void DispatchInto(Pending& p);
  // Dispatches in a batch of its own.
  void Dispatch();

  runtime::EventLoop& loop_;
  store::JobStore& store_;
  BrokerMetrics& metrics_;
  const BrokerOptions options_;
  std::function<std::string()> new_job_id_;

  std::map<std::string, JobRecord> jobs_;  // live (and just-ended) jobs by id: k-sortable
  EndedJobs ended_;  // finished jobs whose end is durable, as summaries
  absl::flat_hash_map<std::string, std::string> idempotency_;  // key -> job id
  JobIndex index_;  // every job by state, queue, kind, label, error code, for ListJobs and bulk operations
  std::uint64_t listing_visited_ = 0;  // see listing_visited()
  Dependents dependents_;
  EventLog events_;
  Dispatcher dispatcher_;
  ExecutorSessions sessions_;
  Retention retention_;
  runtime::Gate gate_;
  bool stopping_ = false;
  bool draining_ = false;  // DrainExecutors was called: nothing more is dispatched
  runtime::TimerId sweep_timer_ = 0;
  std::function<absl::Status()> admit_write_ = [] { return absl::OkStatus(); };
  // Last: constructed after, and destroyed before, everything it calls into.
  std::unique_ptr<BulkOperations> bulk_;
};

}  // namespace cohort::broker
