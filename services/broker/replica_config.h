#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/common/address.h"
#include "libs/replication/replicated_log.h"
#include "services/broker/replica_readiness.h"

namespace cohort::broker {

// At most this many replicas in a broker group (3 or 5 in practice; each more one
// slows every commit, which waits for a majority).
inline constexpr std::size_t kMaxReplicas = 9;

// How one cohort-broker process takes part in a replicated broker group (issue 18,
// docs/replication.md): who it is, the whole group, and where its two stores live.
struct ReplicaConfig {
  replication::Member self;                   // from --replica-id, with its --replicas address
  std::vector<replication::Member> members;   // --replicas, in the order given, self included
  std::string store_dir;  // this replica's RocksDB: <--data-dir>/jobs
  std::string raft_dir;   // its raft log and snapshots: --raft-dir, or <--data-dir>/raft
  // --join: a replica added to a running group: it never bootstraps a configuration of
  // its own, it waits for the leader to send it one. Implied for a replica that
  // --replicas does not list (its address from --replica-address).
  bool join = false;
  // --join-through: a gRPC target naming the group's replicas' --health-listen
  // addresses (HOST:PORT, a comma-separated list of them, or a DNS name resolving to
  // every replica). A joining replica asks them in turn (cohort.v1.ReplicaPeers.Join,
  // ReplicaJoiner) until the leader has made it a voter, also with a log of its own;
  // empty: it waits for `cohortctl replicas add`.
  std::string join_through;
  // --health-listen: where the replica serves its readiness as grpc.health.v1
  // (ReplicaHealthServer); none if unset.
  std::optional<common::HostPort> health_listen;
  // When the replica counts as Ready (--ready-max-lag-entries sets max_lag_entries).
  ReadinessRule readiness;
  // --replica-secret-file: the group's shared secret (replication::ReadPeerSecretFile),
  // which every raft stream and every ReplicaPeers.Join must prove; empty: replica
  // traffic is not authenticated (Replica::Open warns).
  std::string peer_secret;
  // --raft-max-entry-commits: at most this many concurrent commits share one raft entry
  // (replication::CommitMergerOptions::max_entry_commits).
  std::size_t max_entry_commits = 256;
};

// The replica configuration from cohort-broker's flags, or nullopt when neither
// --replica-id nor --replicas is set (the single-node broker, unchanged).
//
//   --replica-id=2 --replicas=1=10.0.0.1:7071,2=10.0.0.2:7071,3=10.0.0.3:7071
//
// `replica_id` 0 stands for "unset". `raft_dir` empty means <data_dir>/raft.
// `self_address` (--replica-address) is this replica's raft address when --replicas
// (the group it was started with, e.g. the StatefulSet's first pods) does not list it:
// such a replica joins (ReplicaConfig::join). Every rule broken is INVALID_ARGUMENT
// naming the flag and quoting at most a bounded prefix of what was given: one flag
// without the other; an id outside 1..1000000 or not an integer; an entry that is not
// ID=HOST:PORT (port 1..65535); a repeated id or address; more than kMaxReplicas
// members; --replica-id missing from --replicas without --replica-address; a
// --replica-address that is not HOST:PORT, differs from the one --replicas lists for
// this id, or is another member's; a raft dir equal to, or inside, the store directory.
absl::StatusOr<std::optional<ReplicaConfig>> ParseReplicaConfig(std::int64_t replica_id, absl::string_view replicas,
                                                                const std::string& raft_dir,
                                                                const std::string& data_dir,
                                                                absl::string_view self_address = "");

// --join-through's value, checked: one HOST:PORT (a name resolving to every replica) or
// a comma-separated list of at most kMaxReplicas of them; INVALID_ARGUMENT naming the
// flag otherwise. Returns it unchanged.
absl::StatusOr<std::string> ParseJoinThrough(absl::string_view join_through);

// A replica's RocksDB directory under --data-dir: <data_dir>/jobs.
std::string ReplicaStoreDir(const std::string& data_dir);

// The replica id of a StatefulSet pod: the ordinal its name ends with, plus one
// (`cohort-broker-0` is replica 1), for --replica-pod-name=$(POD_NAME) in Kubernetes.
// INVALID_ARGUMENT naming --replica-pod-name when the name does not end in -ORDINAL.
absl::StatusOr<std::int64_t> ReplicaIdFromPodName(absl::string_view pod_name);

}  // namespace cohort::broker
