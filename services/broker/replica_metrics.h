#pragma once

#include <cstdint>
#include <mutex>
#include <optional>

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
//   cohort_broker_replica_term                  the highest term seen
//   cohort_broker_replica_applied_index         the last log index applied to the local store
//   cohort_broker_replica_leader_changes_total  times the known leader (or its term) changed
// Thread-safe: Observe may be called from the raft thread and any other.
class ReplicaMetrics {
 public:
  explicit ReplicaMetrics(prometheus::Registry& registry);

  void Observe(const replication::LogStatus& status);
  void SetServing(bool serving) { serving_.Set(serving ? 1 : 0); }

 private:
  prometheus::Family<prometheus::Gauge>& role_family_;
  prometheus::Gauge& follower_;
  prometheus::Gauge& candidate_;
  prometheus::Gauge& leader_;
  prometheus::Gauge& stopped_;
  prometheus::Gauge& serving_;
  prometheus::Gauge& term_;
  prometheus::Gauge& applied_;
  prometheus::Counter& leader_changes_;

  std::mutex mu_;
  // The (leader id, term) last seen with a known leader.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> last_leader_;
};

}  // namespace cohort::broker
