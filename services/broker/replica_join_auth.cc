#include "services/broker/replica_join_auth.h"

#include <array>
#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/replication/peer_secret.h"

namespace cohort::broker {
namespace {

constexpr absl::string_view kLabel = "cohort-join-v2\n";
constexpr std::size_t kChallengeBytes = 32;

std::string Deterministic(const cohort::v1::JoinRequest& request) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    request.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string Hex(const std::uint8_t* data, std::size_t size) {
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(data), size));
}

bool IsHex(absl::string_view s, std::size_t digits) {
  return s.size() == digits && absl::c_all_of(s, [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); });
}

absl::Status Refused(absl::string_view why) { return absl::UnauthenticatedError(std::string(why)); }

replication::Sha256Mac Mac(absl::string_view secret, absl::string_view challenge_hex,
                           const cohort::v1::JoinRequest& request) {
  return replication::HmacSha256(secret, {kLabel, challenge_hex, "\n", Deterministic(request)});
}

}  // namespace

std::string MakeJoinProof(absl::string_view secret, absl::string_view challenge_hex,
                          const cohort::v1::JoinRequest& request) {
  const replication::Sha256Mac mac = Mac(secret, challenge_hex, request);
  return Hex(mac.data(), mac.size());
}

std::string JoinChallenges::Issue() {
  std::array<std::uint8_t, kChallengeBytes> bytes{};
  replication::RandomBytes(bytes.data(), bytes.size());
  std::string challenge = Hex(bytes.data(), bytes.size());
  std::lock_guard lock(mu_);
  if (issued_.size() >= kMaxJoinChallenges) issued_.pop_front();
  issued_.emplace_back(challenge, now_());
  return challenge;
}

absl::Status JoinChallenges::Check(absl::string_view secret, const cohort::v1::JoinRequest& request,
                                   std::optional<absl::string_view> challenge_hex,
                                   std::optional<absl::string_view> mac_hex) {
  if (!challenge_hex.has_value() || !mac_hex.has_value()) {
    return Refused(absl::StrCat("Join needs the metadata ", kJoinChallengeKey, " and ", kJoinAuthKey,
                                ": start the joining replica with the group's --replica-secret-file"));
  }
  if (!IsHex(*challenge_hex, 2 * kChallengeBytes)) {
    return Refused(absl::StrCat(kJoinChallengeKey, " is malformed: send back the challenge this replica issued"));
  }
  if (!IsHex(*mac_hex, 2 * replication::Sha256Mac{}.size())) {
    return Refused(absl::StrCat(kJoinAuthKey, " is malformed: use 64 hex digits (HMAC-SHA256)"));
  }
  absl::Time issued_at;
  {
    std::lock_guard lock(mu_);
    auto it = absl::c_find_if(issued_, [&](const auto& c) { return c.first == *challenge_hex; });
    if (it == issued_.end()) {
      return Refused("the Join challenge is not one this replica issued, or it was used already: ask for a new one");
    }
    issued_at = it->second;
    issued_.erase(it);
  }
  if (now_() - issued_at >= kJoinChallengeTtl) {
    return Refused(absl::StrCat("the Join challenge expired (", absl::FormatDuration(kJoinChallengeTtl),
                                "): ask for a new one"));
  }
  const std::string sent = absl::HexStringToBytes(*mac_hex);
  if (!replication::MacEquals(Mac(secret, *challenge_hex, request), reinterpret_cast<const std::uint8_t*>(sent.data()))) {
    return Refused("the Join proof does not match this group's secret: the joining replica has another "
                   "--replica-secret-file");
  }
  return absl::OkStatus();
}

}  // namespace cohort::broker
