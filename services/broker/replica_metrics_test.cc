// ReplicaMetrics from a log's ReplicationProgress: the series H18c's panels and alerts
// read (commit index, per-follower lag on the leader only, snapshots sent, voters).
#include "services/broker/replica_metrics.h"

#include <map>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "libs/replication/raft_log.h"
#include "prometheus/registry.h"

namespace cohort::broker {
namespace {

using replication::MemberProgress;
using replication::MemberRole;
using replication::ReplicationProgress;
using replication::Role;

// Every sample of `name`, keyed by its labels' values joined ("" for none).
std::map<std::string, double> Samples(prometheus::Registry& registry, const std::string& name) {
  std::map<std::string, double> out;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      std::string key;
      for (const prometheus::ClientMetric::Label& label : metric.label) key += label.value;
      out[key] = family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
    }
  }
  return out;
}

ReplicationProgress Leading(std::uint64_t last, std::uint64_t match2, std::uint64_t match3) {
  ReplicationProgress p;
  p.role = Role::kLeader;
  p.commit_index = last;
  p.last_index = last;
  p.members = {MemberProgress{{1, "127.0.0.1:1"}, MemberRole::kVoter, last},
               MemberProgress{{2, "127.0.0.1:2"}, MemberRole::kVoter, match2},
               MemberProgress{{3, "127.0.0.1:3"}, MemberRole::kVoter, match3},
               MemberProgress{{4, "127.0.0.1:4"}, MemberRole::kSpare, 0}};
  return p;
}

TEST(ReplicaMetrics, TheLeaderExportsEachVotersLagAndTheVoterCount) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  ReplicationProgress p = Leading(100, 100, 60);
  p.snapshots_sent = 2;
  metrics.ObserveProgress(p, 1);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_follower_lag_entries"),
            (std::map<std::string, double>{{"2", 0}, {"3", 40}}));
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_commit_index")[""], 100);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_log_first_index")[""], 0);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_members")[""], 3);  // the spare does not vote
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_sent_total")[""], 2);

  p = Leading(120, 118, 120);
  p.snapshots_sent = 5;
  p.first_index = 97;  // a snapshot at 112 with 16 trailing entries
  metrics.ObserveProgress(p, 1);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_log_first_index")[""], 97);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_follower_lag_entries"),
            (std::map<std::string, double>{{"2", 2}, {"3", 0}}));
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_sent_total")[""], 5);
}

TEST(ReplicaMetrics, PeerAuthFailuresCountWhatTheLogRefusedByDirectionBothAlwaysPresent) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_peer_auth_failures_total"),
            (std::map<std::string, double>{{"accept", 0}, {"connect", 0}}));
  ReplicationProgress p = Leading(10, 10, 10);
  p.peer_auth_refused_accept = 3;
  p.peer_auth_refused_connect = 1;
  metrics.ObserveProgress(p, 1);
  p.peer_auth_refused_accept = 7;
  metrics.ObserveProgress(p, 1);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_peer_auth_failures_total"),
            (std::map<std::string, double>{{"accept", 7}, {"connect", 1}}));
}

TEST(ReplicaMetrics, RejectedRecordsArePresentAtZeroAndCountWhatTheLogRejected) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_peer_records_rejected_total")[""], 0);
  ReplicationProgress p = Leading(10, 10, 10);
  p.peer_records_rejected = 2;
  metrics.ObserveProgress(p, 1);
  metrics.ObserveProgress(p, 1);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_peer_records_rejected_total")[""], 2);
}

TEST(ReplicaMetrics, RefusedJoinsArePresentAtZeroBeforeTheFirstAndCountedByCode) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_join_requests_total"),
            (std::map<std::string, double>{{"UNAUTHENTICATED", 0}}));
  metrics.CountJoinRequest("UNAUTHENTICATED");
  metrics.CountJoinRequest("OK");
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_join_requests_total"),
            (std::map<std::string, double>{{"OK", 1}, {"UNAUTHENTICATED", 1}}));
}

TEST(ReplicaMetrics, LagSeriesDisappearWhenLeadershipOrMembershipGoes) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  metrics.ObserveProgress(Leading(10, 10, 10), 1);
  ReplicationProgress removed = Leading(11, 11, 11);
  removed.members.erase(removed.members.begin() + 2);  // replica 3 removed
  metrics.ObserveProgress(removed, 1);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_follower_lag_entries"),
            (std::map<std::string, double>{{"2", 0}}));
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_members")[""], 2);

  ReplicationProgress follower = removed;
  follower.role = Role::kFollower;
  for (MemberProgress& m : follower.members) m.match_index.reset();
  follower.snapshots_sent = 0;  // not below what was counted: the counter never goes down
  metrics.ObserveProgress(follower, 1);
  EXPECT_TRUE(Samples(registry, "cohort_broker_replica_follower_lag_entries").empty());
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_commit_index")[""], 11);
}

TEST(ReplicaMetrics, SnapshotCountersAddWhatGrewAndTheLastSizeIsAGauge) {
  prometheus::Registry registry;
  ReplicaMetrics metrics(registry);
  replication::ReplicaCounters c;
  c.snapshots_taken = 2;
  c.snapshot_bytes = 4096;
  c.snapshot_nanos = 1'500'000'000;
  c.snapshots_restored = 1;
  metrics.ObserveCounters(c);
  metrics.ObserveCounters(c);  // sampled again unchanged: nothing added
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_taken_total")[""], 2);
  EXPECT_DOUBLE_EQ(Samples(registry, "cohort_broker_replica_snapshot_seconds_total")[""], 1.5);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshot_bytes")[""], 4096);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_restored_total")[""], 1);

  c.snapshots_taken = 3;
  c.snapshot_bytes = 1024;
  c.snapshot_nanos = 2'000'000'000;
  metrics.ObserveCounters(c);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_taken_total")[""], 3);
  EXPECT_DOUBLE_EQ(Samples(registry, "cohort_broker_replica_snapshot_seconds_total")[""], 2.0);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshot_bytes")[""], 1024);
  EXPECT_EQ(Samples(registry, "cohort_broker_replica_snapshots_restored_total")[""], 1);
}

}  // namespace
}  // namespace cohort::broker
