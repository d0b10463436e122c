#include "services/broker/replica_readiness.h"

#include "absl/strings/str_cat.h"

namespace cohort::broker {

Readiness EvaluateReadiness(const ReadinessRule& rule, const replication::LogStatus& status,
                            const replication::ReplicationProgress& progress,
                            std::chrono::steady_clock::time_point now) {
  if (status.role == replication::Role::kStopped) return {false, "stopped"};
  if (status.role == replication::Role::kLeader) return {true, "leader"};
  if (!progress.leader_contact.has_value()) return {false, "no leader heard since the start"};
  const absl::Duration silent = absl::FromChrono(now - *progress.leader_contact);
  if (silent > rule.leaderless_grace) {
    return {false, absl::StrCat("no leader heard for ", absl::FormatDuration(absl::Trunc(silent, absl::Milliseconds(100))))};
  }
  const std::uint64_t behind =
      progress.leader_commit > status.last_applied ? progress.leader_commit - status.last_applied : 0;
  if (behind > rule.max_lag_entries) {
    return {false, absl::StrCat("catching up: applied ", status.last_applied, " of the leader's ",
                                progress.leader_commit, " (", behind, " entries behind)")};
  }
  return {true, "caught up with the leader"};
}

}  // namespace cohort::broker
