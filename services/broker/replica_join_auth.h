#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/replicas.pb.h"

namespace cohort::broker {

// How a replica calling ReplicaPeers.Join proves that it holds the group's secret
// (--replica-secret-file): a challenge-response with the replica it asks.
//   1. A Join without kJoinAuthKey is refused UNAUTHENTICATED, and the refusal carries,
//      in its trailing metadata, kJoinChallengeKey: 32 random bytes in hex, good for one
//      Join at that replica within kJoinChallengeTtl.
//   2. The joiner asks the same replica again with kJoinChallengeKey (the challenge) and
//      kJoinAuthKey: hex HMAC-SHA256(secret, "cohort-join-v2\n" challenge "\n" the
//      JoinRequest serialized deterministically).
// The first Join presenting a challenge uses it up, whatever its proof, and another
// replica never issued it: a captured proof cannot be replayed anywhere. The proof
// covers every field of the request (any added later too).
inline constexpr char kJoinAuthKey[] = "x-cohort-replica-auth";
inline constexpr char kJoinChallengeKey[] = "x-cohort-replica-challenge";
inline constexpr absl::Duration kJoinChallengeTtl = absl::Seconds(30);
// Challenges outstanding at one replica; beyond, the oldest is forgotten (a joiner that
// loses its challenge so asks again).
inline constexpr std::size_t kMaxJoinChallenges = 64;

// The proof (kJoinAuthKey's value) of `secret` for `request`, answering `challenge_hex`.
std::string MakeJoinProof(absl::string_view secret, absl::string_view challenge_hex,
                          const cohort::v1::JoinRequest& request);

// The challenges one replica issued and that are not used up yet. Thread-safe.
class JoinChallenges {
 public:
  explicit JoinChallenges(std::function<absl::Time()> now) : now_(std::move(now)) {}

  // A new challenge, in hex.
  std::string Issue();
  // OK when `challenge_hex` was issued here less than kJoinChallengeTtl ago and not used
  // yet, and `mac_hex` proves `secret` for `request` answering it; the challenge is used
  // up either way. UNAUTHENTICATED otherwise, saying which (missing, malformed, unknown
  // or used, expired, or a wrong proof) without quoting what was sent.
  absl::Status Check(absl::string_view secret, const cohort::v1::JoinRequest& request,
                     std::optional<absl::string_view> challenge_hex, std::optional<absl::string_view> mac_hex);

 private:
  const std::function<absl::Time()> now_;
  std::mutex mu_;
  std::deque<std::pair<std::string, absl::Time>> issued_;  // oldest first; guarded by mu_
};

}  // namespace cohort::broker
