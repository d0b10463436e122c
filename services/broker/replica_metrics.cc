#include "services/broker/replica_metrics.h"

#include <utility>

namespace cohort::broker {
namespace {

prometheus::Gauge& Single(prometheus::Registry& registry, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
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
      term_(Single(registry, "cohort_broker_replica_term", "the highest raft term this replica has seen")),
      applied_(Single(registry, "cohort_broker_replica_applied_index",
                      "the last raft log index this replica applied to its local store")),
      leader_changes_(prometheus::BuildCounter()
                          .Name("cohort_broker_replica_leader_changes_total")
                          .Help("times this replica saw a new leader (another member, or a new term)")
                          .Register(registry)
                          .Add({})) {
  stopped_.Set(1);
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
