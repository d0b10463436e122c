#include "libs/replication/replicated_log.h"

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cohort::replication {
namespace {

// The payload's type URL; its value is "<id> <address>", or empty for no known leader.
constexpr absl::string_view kLeaderPayload = "type.cohort.dev/cohort.replication.NotLeader";

}  // namespace

absl::Status NotLeaderError(const std::optional<Member>& leader) {
  absl::Status status = absl::UnavailableError(
      leader ? absl::StrCat("not the leader; the leader is member ", leader->id, " at ", leader->address)
             : std::string("not the leader; no leader is known (an election may be in progress)"));
  status.SetPayload(kLeaderPayload,
                    absl::Cord(leader ? absl::StrCat(leader->id, " ", leader->address) : std::string()));
  return status;
}

std::optional<Member> LeaderHint(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable) return std::nullopt;
  auto payload = status.GetPayload(kLeaderPayload);
  if (!payload) return std::nullopt;
  std::pair<std::string, std::string> parts = absl::StrSplit(std::string(*payload), absl::MaxSplits(' ', 1));
  Member member;
  if (!absl::SimpleAtoi(parts.first, &member.id) || member.id == 0 || parts.second.empty()) return std::nullopt;
  member.address = std::move(parts.second);
  return member;
}

}  // namespace cohort::replication
