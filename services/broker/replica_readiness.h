#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "libs/replication/raft_log.h"
#include "libs/replication/replicated_log.h"

namespace cohort::broker {

// When a replica of a broker group counts as Ready (Kubernetes readiness, the
// PodDisruptionBudget's count, the replica's gRPC health): it holds the group's state,
// so losing another member leaves the group a majority of replicas that can serve.
//
//   Ready    the leader; or a follower (or a candidate, for a moment) that heard a
//            leader within `leaderless_grace` and has applied the commit index that
//            leader announced, to within `max_lag_entries`.
//   Not      a replica that is stopped, never heard a leader since it started, heard
//            none for longer than `leaderless_grace` (no leader: an election is taking
//            longer than failover should, or it is cut off), or is catching up.
struct ReadinessRule {
  // A follower this many entries or fewer behind the leader's commit index is caught up.
  std::uint64_t max_lag_entries = 1000;
  // A normal failover (election timeout 1-2 s, then a vote) ends within this.
  absl::Duration leaderless_grace = absl::Seconds(3);
};

// A readiness decision and why, for operators' logs ("catching up: applied 120 of
// the leader's 4100").
struct Readiness {
  bool ready = false;
  std::string reason;

  friend bool operator==(const Readiness&, const Readiness&) = default;
};

// Applies `rule` to one replica's view of its log at `now` (steady clock; `progress`'s
// leader_contact is on the same clock). Pure; O(1).
Readiness EvaluateReadiness(const ReadinessRule& rule, const replication::LogStatus& status,
                            const replication::ReplicationProgress& progress,
                            std::chrono::steady_clock::time_point now);

}  // namespace cohort::broker
