#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/replicas.pb.h"

namespace cohort::broker {

// The gRPC metadata by which a replica calling ReplicaPeers.Join proves that it holds
// the group's secret (--replica-secret-file):
//   x-cohort-replica-auth       hex HMAC-SHA256(secret, "cohort-join-v1\n" SECONDS "\n"
//                               the JoinRequest serialized deterministically)
//   x-cohort-replica-auth-time  SECONDS, the Unix time the proof was made, in decimal
// The proof covers every field of the request (any added later too) and holds for
// kJoinProofMaxSkew either side of the answering replica's clock. Within that time a
// captured proof can be replayed, which adds the same member again (a no-op): Join is
// idempotent.
inline constexpr char kJoinAuthKey[] = "x-cohort-replica-auth";
inline constexpr char kJoinAuthTimeKey[] = "x-cohort-replica-auth-time";
inline constexpr absl::Duration kJoinProofMaxSkew = absl::Minutes(5);

// The two metadata values proving `secret` for `request` at `now`.
struct JoinProof {
  std::string mac_hex;
  std::string unix_seconds;
};
JoinProof MakeJoinProof(absl::string_view secret, const cohort::v1::JoinRequest& request, absl::Time now);

// OK when `mac_hex` and `unix_seconds` (nullopt: absent) prove `secret` for `request`
// at `now`; UNAUTHENTICATED otherwise, with a message saying which (missing,
// malformed, outside kJoinProofMaxSkew, or wrong) that never quotes what was sent.
absl::Status CheckJoinProof(absl::string_view secret, const cohort::v1::JoinRequest& request,
                            std::optional<absl::string_view> mac_hex, std::optional<absl::string_view> unix_seconds,
                            absl::Time now);

}  // namespace cohort::broker
