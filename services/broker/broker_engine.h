#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/runtime/runtime.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/executor.pb.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/job_validation.h"
#include "services/broker/ready_queue.h"

namespace cohort::broker {

using runtime::Duration;

// The range of a queue's max_rate (jobs per second) besides 0, which means unlimited.
// At the minimum a queue dispatches one job in about 11.6 days.
inline constexpr double kMinQueueRate = 1e-6;
inline constexpr double kMaxQueueRate = 1e6;

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
};

// What the broker sends to one connected executor. Send() never blocks: the broker
// sends at most one Assign per credit, and the credits are bounded by the executor's
// capacity, so a channel's buffer is bounded too.
class ExecutorChannel {
 public:
  virtual ~ExecutorChannel() = default;
  virtual void Send(cohort::v1::BrokerMessage message) = 0;
};

// Notified once when a job reaches a terminal state (after that state is durable).
// Owned by the watcher; unlinks itself when destroyed.
class JobWatcher : public runtime::internal::ListNode {
 public:
  virtual void OnJobEnded(const cohort::v1::Job& job) = 0;

 protected:
  ~JobWatcher() = default;
};

// The broker's logic: jobs, priority queues, executors and leases, on one event loop.
//
// Every state change is applied in memory at once (so later operations see it),
// written in one JobBatch and group-committed; replies, assignments and watcher
// notifications that depend on it are sent only after that commit is durable. A
// failed commit stops the process: the broker is crash-only, and a restart recovers
// exactly what was acknowledged.
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

  // ---- Clients ------------------------------------------------------------------------
  // All-or-nothing: every spec is validated before anything is written. Returns one id
  // per spec once they are durable; a spec whose idempotency key is known returns the
  // existing job's id. A spec whose deadline has already passed still gets a job, which
  // is FAILED ("deadline_exceeded") in the same commit and never runs.
  runtime::Task<absl::StatusOr<std::vector<std::string>>> Submit(std::vector<cohort::v1::JobSpec> specs,
                                                                 bool validate_only);
  absl::StatusOr<cohort::v1::Job> GetJob(const std::string& id) const;
  absl::StatusOr<cohort::v1::ListJobsResponse> ListJobs(const cohort::v1::ListJobsRequest& request) const;
  runtime::Task<absl::StatusOr<cohort::v1::CancelJobResponse>> CancelJob(std::string id);
  // The scheduler's call: PENDING -> QUEUED (or failed/cancelled for a failed parent),
  // fenced by attempt; releases that no longer apply are skipped.
  runtime::Task<absl::StatusOr<std::vector<std::string>>> ReleaseJobs(cohort::v1::ReleaseJobsRequest request);

  cohort::v1::ListQueuesResponse ListQueues() const;
  // Pausing stops dispatch from the queue (running jobs go on); durable.
  runtime::Task<absl::Status> PauseQueue(std::string queue, bool paused);
  // INVALID_ARGUMENT for a negative max_concurrency, a max_rate that is neither 0 nor
  // within [kMinQueueRate, kMaxQueueRate] (NaN and infinities included), or a weight
  // outside 0..1000.
  runtime::Task<absl::StatusOr<cohort::v1::QueueLimits>> SetQueueLimits(std::string queue,
                                                                         cohort::v1::QueueLimits limits);
  cohort::v1::ListExecutorsResponse ListExecutors() const;

  // Registers `watcher` for job `id`. Returns the job if it has already ended (the
  // watcher is then not registered), nullopt if it is registered, NOT_FOUND if unknown.
  absl::StatusOr<std::optional<cohort::v1::Job>> WatchJob(const std::string& id, JobWatcher* watcher);
  // True if `id` is a known job.
  bool HasJob(const std::string& id) const { return jobs_.contains(id); }
  // The last durable event sequence, and an event set after each commit (Watch).
  std::int64_t committed_sequence() const { return committed_sequence_; }
  runtime::Event& commits() { return *commit_event_; }
  store::JobStore& store() { return store_; }

  // ---- Executors ----------------------------------------------------------------------
  // Leases belong to the executor id, not to a stream: an attempt is leased to
  // (Job.executor_id, Job.attempt) until it ends or its lease timer runs out, and only
  // a Heartbeat or Hello listing it renews that timer.
  //
  // A new Connect stream announced itself. Replaces an earlier session with the same
  // executor id (as a broken stream: its attempts keep their leases). Each attempt in
  // hello.running still leased to this executor id is bound to the new session and its
  // lease renewed (and its Cancel sent again if a cancel was requested meanwhile); the
  // others get a Cancel. Returns a session token.
  absl::StatusOr<std::uint64_t> Attach(const cohort::v1::ExecutorMessage::Hello& hello, ExecutorChannel* channel);
  // A message after Hello. INVALID_ARGUMENT ends the stream. A Heartbeat is answered
  // with LeaseExtended for the listed attempts still leased to this executor id and
  // Cancel for the others. Progress and Complete are accepted for any attempt still
  // leased to this executor id, whichever of its streams it was assigned on.
  absl::Status OnExecutorMessage(std::uint64_t session, const cohort::v1::ExecutorMessage& message);
  // The stream ended. If it broke (or was cancelled), its attempts keep their leases
  // until their timers run out, so that the executor can reconnect and keep them; then
  // they are lost ("lease_expired": requeued with attempt + 1, or failed when attempts
  // are spent). If the executor half-closed it gracefully (a drain), it had reported
  // everything it ran, so what it still holds are assignments it never started: they go
  // back to their queue without using up an attempt.
  void Detach(std::uint64_t session, bool graceful = false);

 private:
  struct JobRecord {
    cohort::v1::Job job;
    runtime::TimerId lease_timer = 0;
    runtime::TimerId deadline_timer = 0;  // while not terminal and spec.deadline is set
    runtime::internal::IntrusiveList<JobWatcher> watchers;
  };
  struct QueueState {
    explicit QueueState(int starvation_every) : ready(starvation_every) {}
    ReadyQueue ready;
    bool paused = false;
    cohort::v1::QueueLimits limits;  // every field set
    std::int64_t running = 0;
    // Token bucket for limits.max_rate: refilled at max_rate per second, up to
    // max(1, max_rate) tokens; one per dispatch.
    double tokens = 0;
    runtime::TimePoint refilled{};
  };
  struct Session {
    std::uint64_t token;
    cohort::v1::ExecutorMessage::Hello hello;
    ExecutorChannel* channel;
    std::int32_t credits = 0;
    absl::flat_hash_set<std::string> running;
    absl::Time connect_time;
    absl::Time last_heartbeat;
  };
  // A batch being built, with what to do once it is durable.
  struct Pending {
    store::JobBatch batch;
    std::vector<std::pair<std::uint64_t, cohort::v1::BrokerMessage>> sends;  // by session token
    std::vector<std::string> ended;           // jobs whose watchers to notify
    absl::flat_hash_set<std::string> queues;  // queues whose gauges may have changed
    std::int64_t sequence = 0;                // last event sequence staged in `batch`
  };

  absl::Time Now() const;
  QueueState& Queue(const std::string& name);
  // Applies a transition in memory and stages it (job + indexes + event) in `p`.
  void Transition(JobRecord& rec, cohort::v1::JobState to, cohort::v1::TransitionReason reason, Pending& p);
  void Enqueue(JobRecord& rec);
  void LoseAttempt(JobRecord& rec, cohort::v1::Error error, cohort::v1::TransitionReason reason, Pending& p);
  void ReturnUnstarted(JobRecord& rec, Pending& p);
  void FinishAttempt(JobRecord& rec, const cohort::v1::ExecutorMessage::Complete& complete, Pending& p);
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
  static cohort::v1::BrokerMessage CancelMessage(const std::string& job_id, std::int32_t attempt, std::string reason);
  JobRecord* NextFor(Session& session);
  // Leases queued jobs to executors with credit, staging the transitions in `p`, so
  // that a change and the dispatches it enables share one commit (one fsync).
  void DispatchInto(Pending& p);
  // Dispatches in a batch of its own.
  void Dispatch();
  // Starts committing `p` now (so commits reach the store in staging order), then
  // sends and notifies what depends on it. Fatal if the commit fails. The returned
  // handle may be awaited or dropped; Stop() waits for it either way.
  runtime::TaskHandle<void> Persist(Pending p);
  runtime::Task<void> CommitAndApply(Pending p, runtime::Gate::Holder holder);
  Session* SessionOf(std::uint64_t token);
  void ExportQueueGauges(const std::string& name);
  // True if the queue's rate limit allows a dispatch now; otherwise notes when it will.
  bool TakeToken(QueueState& q, runtime::TimePoint now, runtime::TimePoint& next_token);
  // Deletes expired jobs and trims old events; re-arms itself.
  void Sweep();
  void NoteEnded(const cohort::v1::Job& job);
  void StageQueueSettings(const std::string& name, Pending& p);

  runtime::EventLoop& loop_;
  store::JobStore& store_;
  BrokerMetrics& metrics_;
  const BrokerOptions options_;
  std::function<std::string()> new_job_id_;

  std::map<std::string, JobRecord> jobs_;  // by id: k-sortable, so submission order
  absl::flat_hash_map<std::string, std::string> idempotency_;  // key -> job id
  std::map<std::string, QueueState> queues_;
  std::map<std::uint64_t, Session> sessions_;
  absl::flat_hash_map<std::string, std::uint64_t> session_by_executor_;
  std::uint64_t next_session_ = 1;
  std::string rr_queue_;  // weighted round robin: the queue whose turn it is
  int rr_left_ = 0;
  std::int64_t last_sequence_ = 0;       // assigned
  std::int64_t committed_sequence_ = 0;  // durable
  std::unique_ptr<runtime::Event> commit_event_;
  runtime::Gate gate_;
  bool stopping_ = false;
  std::multimap<absl::Time, std::string> expiries_;         // terminal jobs by expire_time
  std::deque<std::pair<absl::Time, std::int64_t>> commits_;  // (time, last sequence) per commit
  runtime::TimerId sweep_timer_ = 0;
  runtime::TimerId rate_timer_ = 0;
};

}  // namespace cohort::broker
