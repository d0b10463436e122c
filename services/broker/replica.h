#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/replication/replicated_job_store.h"
#include "libs/replication/replicated_log.h"
#include "libs/runtime/runtime.h"
#include "libs/store/job_store.h"
#include "prometheus/registry.h"
#include "services/broker/replica_config.h"
#include "services/broker/replica_health.h"
#include "services/broker/replica_join.h"
#include "services/broker/replica_metrics.h"
#include "services/broker/replica_readiness.h"

namespace cohort::broker {

// The exit code of a broker replica that stopped leading while it served (EX_TEMPFAIL):
// its supervisor restarts it, and it rejoins its group as a follower.
inline constexpr int kExitLostLeadership = 75;

class LeaderStore;  // replica.cc: the engine's store while a replica serves

// "applied_index=N digest=HEX" for the replica store in `store_dir` (ReplicaConfig's
// store_dir), read offline: the applied log index and a 64-bit FNV-1a hash of the whole
// store as a snapshot carries it (RocksJobStore::Export). Two replicas that applied the
// same entries print the same line. The replica must not be running (the store is
// locked). For operators and tests comparing replicas (cohort-broker --store-digest).
absl::StatusOr<std::string> StoreDigest(const std::string& store_dir);

// One replica of a replicated broker group (issue 18): its ReplicatedJobStore, its
// metrics (ReplicaMetrics) and the leadership lifecycle the lead chose for cohort-broker
// (docs/replication.md): a replica serves clients only while it leads, and a replica
// that served and stops leading ends its process at once (crash-only), so that no
// in-memory state of an old term survives it.
//
//   auto replica = Replica::Open(config, registry);     // joins the group, as a follower
//   if ((co_await replica->AwaitLeadership(loop, stop)).ok()) {
//     std::unique_ptr<store::JobStore> store = replica->Serve();  // from here, losing leadership exits 75
//     ... BrokerApp over `store` (recovers the whole committed state), then the gRPC server ...
//   }
//   replica->Stop();                                     // after the app stopped
//
// Fencing: a store returned by Serve commits only as the leader of the term it was
// elected in; a commit refused or left unknown because leadership moved (UNAVAILABLE,
// ABORTED, CANCELLED) ends the process with kExitLostLeadership before the engine sees
// it, so nothing is acknowledged from a stale term. Attempts the old leader had
// assigned are recovered as after a restart (requeued, fenced by attempt number).
//
// Readiness: every kSamplePeriod the replica applies config.readiness (ReadinessRule) to
// its log's view, sets cohort_broker_replica_ready, serves the answer as grpc.health.v1
// on config.health_listen (ReplicaHealthServer) if set, and logs each change with its
// reason ("replica ready" at info, "replica not ready" at warning). NOT_SERVING from
// the start until the first decision, and again from Stop.
//
// Joining: a replica with config.join and config.join_through asks the group to add it
// (ReplicaJoiner) until it is a voter: a new StatefulSet pod (an empty log) until its
// configuration lists it as one, and a pod with a log (a restarted member, or one
// removed at a scale-down that returns with its volume) until the leader answers its
// Join with OK, since the configuration it holds may predate its removal.
// Every replica with a health port answers such requests (ReplicaPeersService) when it
// leads.
//
// Threading: AwaitLeadership on `loop`; the rest from the thread that owns the replica.
// The status listener runs on the raft thread. Destruction stops the replica.
class Replica {
 public:
  // Opens this replica's stores (RocksDB at config.store_dir, the raft log at
  // config.raft_dir, both created if missing), joins the group and starts the health
  // server. Errors: the store's or the log's (e.g. a directory locked by another
  // process), the health port's.
  static absl::StatusOr<std::unique_ptr<Replica>> Open(const ReplicaConfig& config, prometheus::Registry& registry);
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Completes with OK once this replica leads and has applied every entry committed
  // before its term (ReplicatedJobStore::Barrier), or with CANCELLED once `stop` is set
  // first. A barrier that fails (leadership lost meanwhile) is logged and the wait goes
  // on. Checks the role every kLeadershipPoll.
  static constexpr absl::Duration kLeadershipPoll = absl::Milliseconds(20);
  runtime::Task<absl::Status> AwaitLeadership(runtime::EventLoop& loop, runtime::Event& stop);

  // Starts serving: from now on, a status change to any role but leader, or a commit
  // that failed for leadership, ends the process with kExitLostLeadership (logged). If
  // leadership was already lost since AwaitLeadership, that happens at once. Returns
  // the store for the engine; it refers to this replica, which must outlive it. Once.
  std::unique_ptr<store::JobStore> Serve();

  // The process was asked to stop (SIGTERM); any thread, at once (the signal handler).
  // From now on a commit that fails because leadership moved or the majority went away
  // (the whole group stopping together), or that is still unanswered kStuckWhileStopping
  // after the request with none answered meanwhile, ends the process with exit 0 and a
  // warning instead of kExitLostLeadership: it was asked to stop, serves nothing more
  // (its clients' calls were cancelled, so nothing of that commit was acknowledged), and
  // its followers, stopping too, can no longer commit it.
  static constexpr std::chrono::milliseconds kStuckWhileStopping{200};
  void RequestStop();

  // Ends serving (a graceful stop no longer exits 75) and leaves the group; blocking,
  // idempotent. Call after the engine over Serve()'s store has stopped. A replica that
  // leads first hands leadership to a voter that proves it is alive and not stopping
  // (it answers the leader after Stop began, within kHandoverProbe) and holds the whole
  // log; the transfer is given kHandoverBound (raft moves leadership in milliseconds).
  // So a SIGTERM'd leader (a rolling restart) costs the group no election timeout, and
  // a whole group stopping at once (helm uninstall, a drain) does not wait for one: with
  // no such voter the leader just stops, and the others, if any stay, elect one.
  static constexpr absl::Duration kHandoverProbe = absl::Milliseconds(250);
  static constexpr absl::Duration kHandoverBound = absl::Milliseconds(300);
  void Stop();

  replication::LogStatus status() const { return store_->status(); }
  replication::ReplicationProgress progress() const { return store_->progress(); }

  // Membership changes (replication::RaftLog::AddMember / RemoveMember), on the leader.
  // `member` is copied into the task before this returns.
  runtime::Task<absl::Status> AddMember(const replication::Member& member) { return store_->AddMember(member); }
  runtime::Task<absl::Status> RemoveMember(std::uint64_t id) { return store_->RemoveMember(id); }

  // Hands leadership to replica `to` (0: a voter that is up to date) on the leader
  // (replication::RaftLog::TransferLeadership; OK at once if `to` is this replica). OK
  // means this replica stepped down. While it runs, losing leadership does not end the
  // process at once: the role change is noted, and a commit that fails meanwhile (the
  // log refuses proposals during a transfer) waits; FinishHandover, which the caller
  // must call once it has answered, then ends the process with kExitLostLeadership if
  // the replica stepped down or a commit failed. One at a time (FAILED_PRECONDITION).
  runtime::Task<absl::Status> TransferLeadership(std::uint64_t to);
  void FinishHandover();
  const ReplicaConfig& config() const { return config_; }
  // The health server's address (port 0 resolved), if config.health_listen was set.
  std::optional<common::HostPort> health_address() const;

 private:
  Replica(ReplicaConfig config, prometheus::Registry& registry);
  void OnStatus(const replication::LogStatus& status);
  // Stop's hand-over (see Stop). Blocks until the outcome or its bound, logs it and
  // counts it (cohort_broker_replica_transfers_total{reason="stop"}).
  void HandOverBeforeStopping();
  // The first voter other than this one that was heard after `since` and holds this
  // leader's whole log; 0 if none (yet), or if this replica no longer leads.
  std::uint64_t LiveUpToDateVoter(std::chrono::steady_clock::time_point since) const;
  friend class LeaderStore;  // waits on handing_over_, sets commit_failed_

  // Body of sampler_: refreshes the metrics (the applied index moves without status
  // changes) and the readiness every kSamplePeriod until Stop.
  static constexpr std::chrono::milliseconds kSamplePeriod{250};
  void Sample();
  // One readiness decision from `status` and `progress` (the sampler's thread).
  void UpdateReadiness(const replication::LogStatus& status, const replication::ReplicationProgress& progress);

  const ReplicaConfig config_;
  ReplicaMetrics metrics_;
  std::unique_ptr<replication::ReplicatedJobStore> store_;
  std::unique_ptr<ReplicaPeersService> peers_;  // served by health_
  std::unique_ptr<ReplicaHealthServer> health_;
  std::unique_ptr<ReplicaJoiner> joiner_;       // while this replica asks to be added
  std::atomic<bool> serving_{false};
  // A TransferLeadership is running (until FinishHandover); leadership lost or a commit
  // failed meanwhile; the transfer stepped this replica down.
  std::atomic<bool> handing_over_{false};
  std::atomic<bool> lost_during_handover_{false};
  std::atomic<bool> commit_failed_{false};
  std::atomic<bool> stepped_down_{false};
  std::atomic<bool> stop_requested_{false};  // RequestStop
  // LeaderStore's commits awaiting their answer, and when the last answer came or the
  // stop was asked (steady clock, nanoseconds): what the sampler watches after RequestStop.
  std::atomic<int> commits_in_flight_{0};
  std::atomic<std::int64_t> last_progress_ns_{0};
  // A commit stuck since RequestStop (see there): the sampler's thread.
  bool StuckWhileStopping() const;
  std::optional<Readiness> readiness_;  // the last decision; the sampler's thread only

  std::mutex sampler_mu_;
  std::condition_variable sampler_wake_;
  bool sampler_stop_ = false;  // guarded by sampler_mu_
  std::thread sampler_;
};

}  // namespace cohort::broker
