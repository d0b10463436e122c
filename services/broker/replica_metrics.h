#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>

#include "libs/replication/job_store_machine.h"
#include "libs/replication/raft_log.h"
#include "libs/replication/replicated_log.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace cohort::broker {

// The metrics of one replica of a broker group, from its log's view (LogStatus):
//   cohort_broker_replica_role{role}            1 for the current role (follower,
//                                               candidate, leader, stopped), 0 for the others
//   cohort_broker_replica_serving               1 while this replica serves clients (it leads
//                                               and has caught up), else 0
//   cohort_broker_replica_ready                 1 while this replica counts as Ready (it leads,
//                                               or follows a leader it has caught up with:
//                                               ReadinessRule), else 0
//   cohort_broker_replica_term                  the highest term seen
//   cohort_broker_replica_applied_index         the last log index applied to the local store
//   cohort_broker_replica_leader_changes_total  times the known leader (or its term) changed
// and, from the log's ReplicationProgress (ObserveProgress):
//   cohort_broker_replica_commit_index          the highest log index known committed
//   cohort_broker_replica_log_first_index       the first index the raft log still holds
//                                               (earlier ones only in the snapshot: a
//                                               follower that lacks them is sent it)
//   cohort_broker_replica_follower_lag_entries{follower="<replica id>"}
//                                               on the leader only: its last log index minus
//                                               what the follower is known to hold, for every
//                                               voter and standby but itself (absent elsewhere)
//   cohort_broker_replica_snapshots_sent_total  snapshots this replica sent to a follower
//   cohort_broker_replica_members               voters in the current configuration
//   cohort_broker_replica_peer_auth_failures_total{direction="accept|connect"}
//                                               raft streams refused because the peer did
//                                               not prove the group's secret (a wrong proof,
//                                               the deadline, EOF mid-handshake): ones this
//                                               replica accepted, ones it opened
//   cohort_broker_replica_peer_records_rejected_total
//                                               authenticated raft streams closed on a record
//                                               that did not verify (bytes altered, dropped
//                                               or injected on the way)
// and, from the replica's state machine (ObserveCounters):
//   cohort_broker_replica_snapshots_taken_total     snapshots of the local store exported
//   cohort_broker_replica_snapshot_seconds_total    time spent exporting them (off the
//                                                   raft thread: their cost, not a stall)
//   cohort_broker_replica_snapshot_bytes            the last snapshot's size
//   cohort_broker_replica_snapshots_restored_total  snapshots that replaced the local store
// and, from the replica's operations:
//   cohort_broker_replica_joining               1 while this replica asks the group to add it
//                                               (--join-through), else 0
//   cohort_broker_replica_join_requests_total{code}
//                                               ReplicaPeers.Join calls this replica answered,
//                                               by gRPC code (OK: the leader made the caller a
//                                               voter; UNAVAILABLE: it did not lead;
//                                               UNAUTHENTICATED: no valid proof of the
//                                               group's secret; present from the start at 0)
//   cohort_broker_replica_transfers_total{reason,result}
//                                               leadership transfers this replica started as
//                                               leader: reason "command" (ReplicaAdmin) or
//                                               "stop" (SIGTERM); result "ok" (it stepped
//                                               down), "failed" (it kept leading, or lost
//                                               leadership otherwise), "skipped" (on stop: no
//                                               live, up-to-date voter to hand over to)
// Thread-safe: Observe and ObserveProgress may be called from any thread.
class ReplicaMetrics {
 public:
  explicit ReplicaMetrics(prometheus::Registry& registry);

  void Observe(const replication::LogStatus& status);
  // `self`: this replica's id, never a follower of itself.
  void ObserveProgress(const replication::ReplicationProgress& progress, std::uint64_t self);
  // The machine's cumulative counters (they start at 0 with the replica).
  void ObserveCounters(const replication::ReplicaCounters& counters);
  void SetServing(bool serving) { serving_.Set(serving ? 1 : 0); }
  void SetReady(bool ready) { ready_.Set(ready ? 1 : 0); }
  void SetJoining(bool joining) { joining_.Set(joining ? 1 : 0); }
  // `code`: a gRPC code's name (rpc::CodeName), a bounded set.
  void CountJoinRequest(std::string_view code);
  // `reason`: "command" or "stop"; `result`: "ok", "failed" or "skipped".
  void CountTransfer(std::string_view reason, std::string_view result);

 private:
  prometheus::Family<prometheus::Gauge>& role_family_;
  prometheus::Gauge& follower_;
  prometheus::Gauge& candidate_;
  prometheus::Gauge& leader_;
  prometheus::Gauge& stopped_;
  prometheus::Gauge& serving_;
  prometheus::Gauge& ready_;
  prometheus::Gauge& term_;
  prometheus::Gauge& applied_;
  prometheus::Counter& leader_changes_;
  prometheus::Gauge& commit_index_;
  prometheus::Gauge& log_first_index_;
  prometheus::Gauge& members_;
  prometheus::Counter& snapshots_sent_;
  prometheus::Family<prometheus::Counter>& peer_auth_failures_;
  prometheus::Counter& peer_auth_accept_;
  prometheus::Counter& peer_auth_connect_;
  prometheus::Counter& peer_records_rejected_;
  prometheus::Counter& snapshots_taken_;
  prometheus::Counter& snapshot_seconds_;
  prometheus::Gauge& snapshot_bytes_;
  prometheus::Counter& snapshots_restored_;
  prometheus::Family<prometheus::Gauge>& lag_family_;
  prometheus::Gauge& joining_;
  prometheus::Family<prometheus::Counter>& join_requests_;
  prometheus::Family<prometheus::Counter>& transfers_;

  std::mutex mu_;
  // The (leader id, term) last seen with a known leader.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> last_leader_;
  // The log's snapshots_sent when last observed (its counter starts at 0 with the log).
  std::uint64_t snapshots_seen_ = 0;
  // The log's refused-stream counts when last observed.
  std::uint64_t peer_auth_accept_seen_ = 0;
  std::uint64_t peer_auth_connect_seen_ = 0;
  std::uint64_t peer_records_rejected_seen_ = 0;
  // The counters when last observed (ObserveCounters adds what grew since).
  replication::ReplicaCounters counters_seen_;
  // The lag gauges present now, by follower id.
  std::map<std::uint64_t, prometheus::Gauge*> lags_;
};

}  // namespace cohort::broker
