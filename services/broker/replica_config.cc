#include "services/broker/replica_config.h"

#include <utility>

#include "absl/algorithm/container.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "libs/common/address.h"
#include "libs/common/quote.h"

namespace cohort::broker {
namespace {

constexpr std::int64_t kMaxReplicaId = 1'000'000;

absl::Status Invalid(absl::string_view why) { return absl::InvalidArgumentError(std::string(why)); }

// `path` without trailing slashes, for comparing directories.
std::string Trimmed(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

}  // namespace

absl::StatusOr<std::optional<ReplicaConfig>> ParseReplicaConfig(std::int64_t replica_id, absl::string_view replicas,
                                                                const std::string& raft_dir,
                                                                const std::string& data_dir,
                                                                absl::string_view self_address) {
  if (replica_id == 0 && replicas.empty()) return std::nullopt;
  if (replicas.empty()) return Invalid("--replica-id needs --replicas (ID=HOST:PORT of every replica, itself included)");
  if (replica_id == 0) return Invalid("--replicas needs --replica-id (this replica's id among them)");
  if (replica_id < 0 || replica_id > kMaxReplicaId) {
    return Invalid(absl::StrCat("--replica-id=", replica_id, " is invalid: use 1..", kMaxReplicaId));
  }
  ReplicaConfig config;
  const std::vector<absl::string_view> entries = absl::StrSplit(replicas, ',');
  if (entries.size() > kMaxReplicas) {
    return Invalid(absl::StrCat("--replicas lists ", entries.size(), " replicas: at most ", kMaxReplicas));
  }
  for (absl::string_view entry : entries) {
    const std::pair<absl::string_view, absl::string_view> id_address = absl::StrSplit(entry, absl::MaxSplits('=', 1));
    std::int64_t id = 0;
    if (!absl::SimpleAtoi(id_address.first, &id) || id <= 0 || id > kMaxReplicaId ||
        entry.find('=') == absl::string_view::npos) {
      return Invalid(absl::StrCat("--replicas entry ", common::QuoteBounded(entry), " is invalid: use ID=HOST:PORT with ID in 1..",
                                  kMaxReplicaId));
    }
    absl::StatusOr<common::HostPort> address =
        common::ParseHostPort("--replicas", id_address.second, common::PortZero::kRejected);
    if (!address.ok()) return address.status();
    replication::Member member{static_cast<std::uint64_t>(id), address->ToString()};
    if (absl::c_any_of(config.members, [&](const replication::Member& m) { return m.id == member.id; })) {
      return Invalid(absl::StrCat("--replicas lists id ", id, " twice"));
    }
    if (absl::c_any_of(config.members, [&](const replication::Member& m) { return m.address == member.address; })) {
      return Invalid(absl::StrCat("--replicas lists ", member.address, " twice"));
    }
    config.members.push_back(std::move(member));
  }
  auto self = absl::c_find_if(config.members,
                              [&](const replication::Member& m) { return m.id == static_cast<std::uint64_t>(replica_id); });
  std::optional<std::string> own;
  if (!self_address.empty()) {
    absl::StatusOr<common::HostPort> address =
        common::ParseHostPort("--replica-address", self_address, common::PortZero::kRejected);
    if (!address.ok()) return address.status();
    own = address->ToString();
  }
  if (self != config.members.end()) {
    if (own.has_value() && *own != self->address) {
      return Invalid(absl::StrCat("--replica-address=", common::QuoteBounded(self_address), " differs from ",
                                  self->address, ", replica ", replica_id, "'s address in --replicas"));
    }
    config.self = *self;
  } else if (!own.has_value()) {
    return Invalid(absl::StrCat("--replica-id=", replica_id,
                                " is not one of the ids in --replicas: give its raft address in --replica-address "
                                "to join the group"));
  } else if (absl::c_any_of(config.members, [&](const replication::Member& m) { return m.address == *own; })) {
    return Invalid(absl::StrCat("--replica-address=", *own, " is another replica's address in --replicas"));
  } else {
    config.self = replication::Member{static_cast<std::uint64_t>(replica_id), *own};
    config.join = true;  // not in the group it was started with: it joins
  }
  config.store_dir = ReplicaStoreDir(data_dir);
  config.raft_dir = raft_dir.empty() ? absl::StrCat(Trimmed(data_dir), "/raft") : Trimmed(raft_dir);
  if (config.raft_dir == config.store_dir || config.raft_dir.rfind(config.store_dir + "/", 0) == 0) {
    return Invalid(absl::StrCat("--raft-dir must not be the store directory ", config.store_dir, " nor inside it"));
  }
  return config;
}

absl::StatusOr<std::string> ParseJoinThrough(absl::string_view join_through) {
  const std::vector<absl::string_view> entries = absl::StrSplit(join_through, ',');
  if (entries.size() > kMaxReplicas) {
    return Invalid(absl::StrCat("--join-through lists ", entries.size(), " addresses: at most ", kMaxReplicas));
  }
  for (absl::string_view entry : entries) {
    absl::StatusOr<common::HostPort> address = common::ParseHostPort("--join-through", entry, common::PortZero::kRejected);
    if (!address.ok()) return address.status();
  }
  return std::string(join_through);
}

std::string ReplicaStoreDir(const std::string& data_dir) { return absl::StrCat(Trimmed(data_dir), "/jobs"); }

absl::StatusOr<std::int64_t> ReplicaIdFromPodName(absl::string_view pod_name) {
  const std::size_t dash = pod_name.rfind('-');
  std::int64_t ordinal = -1;
  const absl::string_view digits = dash == absl::string_view::npos ? "" : pod_name.substr(dash + 1);
  if (digits.empty() || digits.size() > 7 || !absl::c_all_of(digits, [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(pod_name.substr(dash + 1), &ordinal) || ordinal < 0 || ordinal >= kMaxReplicaId) {
    return Invalid(absl::StrCat("--replica-pod-name ", common::QuoteBounded(pod_name),
                                " is invalid: a StatefulSet pod's name ends in -ORDINAL"));
  }
  return ordinal + 1;
}

}  // namespace cohort::broker
