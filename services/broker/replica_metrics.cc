#include "services/broker/replica_metrics.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace cohort::broker {
namespace {

// Adds to `counter` what a cumulative count grew by since `seen` (a count that went
// down, as a restarted log's, adds nothing: a counter never goes down).
void AddGrowth(prometheus::Counter& counter, double now, double seen) {
  if (now > seen) counter.Increment(now - seen);
}

// The same, then remembers `now` as `seen`.
void AddGrowthSince(prometheus::Counter& counter, std::uint64_t now, std::uint64_t& seen) {
  AddGrowth(counter, static_cast<double>(now), static_cast<double>(seen));
  seen = now;
}

prometheus::Gauge& Single(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

prometheus::Family<prometheus::Counter>& Counters(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Counter& Total(prometheus::Registry& registry, const char* name, const char* help) {
  return Counters(registry, name, help).Add({});
}

}  // namespace

ReplicaMetrics::ReplicaMetrics(prometheus::Registry& registry)
    : role_family_(prometheus::BuildGauge()
                       .Name("cohort_broker_replica_role")
                       .Help("1 for this replica's current role in its broker group (label role), 0 for the others")
                       .Register(registry)),
      follower_(role_family_.Add({{"role", "follower"}})),
      candidate_(role_family_.Add({{"role", "candidate"}})),
      leader_(role_family_.Add({{"role", "leader"}})),
      stopped_(role_family_.Add({{"role", "stopped"}})),
      serving_(Single(registry, "cohort_broker_replica_serving",
                      "1 while this replica serves clients (it leads and has applied every earlier entry)")),
      ready_(Single(registry, "cohort_broker_replica_ready",
                    "1 while this replica counts as Ready: it leads, or follows a leader it has caught up with")),
      term_(Single(registry, "cohort_broker_replica_term", "the highest raft term this replica has seen")),
      applied_(Single(registry, "cohort_broker_replica_applied_index",
                      "the last raft log index this replica applied to its local store")),
      leader_changes_(Total(registry, "cohort_broker_replica_leader_changes_total",
                            "times this replica saw a new leader (another member, or a new term)")),
      commit_index_(Single(registry, "cohort_broker_replica_commit_index",
                           "the highest raft log index this replica knows to be committed")),
      log_first_index_(Single(registry, "cohort_broker_replica_log_first_index",
                              "the first index this replica's raft log still holds: earlier entries are only in its "
                              "snapshot, and a follower that lacks one is sent the snapshot")),
      members_(Single(registry, "cohort_broker_replica_members", "voters in the group's current configuration")),
      snapshots_sent_(Total(registry, "cohort_broker_replica_snapshots_sent_total",
                            "snapshots this replica sent to followers behind its log (as leader)")),
      peer_auth_failures_(Counters(registry, "cohort_broker_replica_peer_auth_failures_total",
                                   "raft streams refused because the peer did not prove the group's secret "
                                   "(--replica-secret-file), by direction: accept (this replica accepted it) or "
                                   "connect (this replica opened it)")),
      peer_auth_accept_(peer_auth_failures_.Add({{"direction", "accept"}})),
      peer_auth_connect_(peer_auth_failures_.Add({{"direction", "connect"}})),
      peer_records_rejected_(Total(registry, "cohort_broker_replica_peer_records_rejected_total",
                                   "authenticated raft streams closed on a record that did not verify: bytes "
                                   "altered, dropped or injected between the replicas")),
      snapshots_taken_(Total(registry, "cohort_broker_replica_snapshots_taken_total",
                             "snapshots of this replica's store exported for its raft log")),
      snapshot_seconds_(Total(registry, "cohort_broker_replica_snapshot_seconds_total",
                              "time spent exporting those snapshots (off the raft thread)")),
      snapshot_bytes_(Single(registry, "cohort_broker_replica_snapshot_bytes", "the size of the last snapshot exported")),
      snapshots_restored_(Total(registry, "cohort_broker_replica_snapshots_restored_total",
                                "snapshots received from a leader that replaced this replica's store")),
      lag_family_(prometheus::BuildGauge()
                      .Name("cohort_broker_replica_follower_lag_entries")
                      .Help("on the leader: its last log index minus the entries the follower (label follower, "
                            "its replica id) is known to hold")
                      .Register(registry)),
      joining_(Single(registry, "cohort_broker_replica_joining",
                      "1 while this replica asks its group's leader to add it (--join-through), else 0")),
      join_requests_(Counters(registry, "cohort_broker_replica_join_requests_total",
                              "requests of other replicas to join the group that this replica answered, by gRPC code "
                              "(OK: as leader, it made the caller a voter; UNAUTHENTICATED: no valid proof of the "
                              "group's secret)")),
      transfers_(Counters(registry, "cohort_broker_replica_transfers_total",
                          "leadership transfers this replica started as leader, by reason (command, stop) and "
                          "result (ok: stepped down; failed: kept leading; skipped: no live up-to-date voter)")) {
  stopped_.Set(1);
  // Present from the start at 0, so that increase() over it (CohortBrokerPeerAuthFailures)
  // sees the first refusal.
  join_requests_.Add({{"code", "UNAUTHENTICATED"}});
}

void ReplicaMetrics::CountJoinRequest(std::string_view code) { join_requests_.Add({{"code", std::string(code)}}).Increment(); }

void ReplicaMetrics::CountTransfer(std::string_view reason, std::string_view result) {
  transfers_.Add({{"reason", std::string(reason)}, {"result", std::string(result)}}).Increment();
}

void ReplicaMetrics::ObserveCounters(const replication::ReplicaCounters& counters) {
  std::lock_guard lock(mu_);
  if (counters.snapshots_taken > counters_seen_.snapshots_taken) {
    snapshot_bytes_.Set(static_cast<double>(counters.snapshot_bytes));
  }
  AddGrowth(snapshots_taken_, counters.snapshots_taken, counters_seen_.snapshots_taken);
  AddGrowth(snapshot_seconds_, counters.snapshot_nanos / 1e9, counters_seen_.snapshot_nanos / 1e9);
  AddGrowth(snapshots_restored_, counters.snapshots_restored, counters_seen_.snapshots_restored);
  counters_seen_ = counters;
}

void ReplicaMetrics::ObserveProgress(const replication::ReplicationProgress& progress, std::uint64_t self) {
  commit_index_.Set(static_cast<double>(progress.commit_index));
  log_first_index_.Set(static_cast<double>(progress.first_index));
  members_.Set(static_cast<double>(progress.voters()));
  std::lock_guard lock(mu_);
  AddGrowthSince(snapshots_sent_, progress.snapshots_sent, snapshots_seen_);
  AddGrowthSince(peer_auth_accept_, progress.peer_auth_refused_accept, peer_auth_accept_seen_);
  AddGrowthSince(peer_auth_connect_, progress.peer_auth_refused_connect, peer_auth_connect_seen_);
  AddGrowthSince(peer_records_rejected_, progress.peer_records_rejected, peer_records_rejected_seen_);
  std::map<std::uint64_t, prometheus::Gauge*> lags;
  if (progress.role == replication::Role::kLeader) {
    for (const replication::MemberProgress& m : progress.members) {
      if (m.member.id == self || m.role == replication::MemberRole::kSpare || !m.match_index.has_value()) continue;
      auto known = lags_.find(m.member.id);
      prometheus::Gauge* gauge = known != lags_.end() ? known->second
                                                      : &lag_family_.Add({{"follower", absl::StrCat(m.member.id)}});
      const std::uint64_t match = *m.match_index;
      gauge->Set(match >= progress.last_index ? 0.0 : static_cast<double>(progress.last_index - match));
      lags[m.member.id] = gauge;
    }
  }
  for (const auto& [id, gauge] : lags_) {
    if (!lags.contains(id)) lag_family_.Remove(gauge);
  }
  lags_ = std::move(lags);
}

void ReplicaMetrics::Observe(const replication::LogStatus& status) {
  follower_.Set(status.role == replication::Role::kFollower ? 1 : 0);
  candidate_.Set(status.role == replication::Role::kCandidate ? 1 : 0);
  leader_.Set(status.role == replication::Role::kLeader ? 1 : 0);
  stopped_.Set(status.role == replication::Role::kStopped ? 1 : 0);
  term_.Set(static_cast<double>(status.term));
  applied_.Set(static_cast<double>(status.last_applied));
  if (!status.leader.has_value()) return;
  const std::pair<std::uint64_t, std::uint64_t> now{status.leader->id, status.term};
  std::lock_guard lock(mu_);
  if (last_leader_ != now) {
    last_leader_ = now;
    leader_changes_.Increment();
  }
}

}  // namespace cohort::broker
