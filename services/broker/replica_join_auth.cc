#include "services/broker/replica_join_auth.h"

#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/replication/peer_secret.h"

namespace cohort::broker {
namespace {

constexpr absl::string_view kLabel = "cohort-join-v1\n";
constexpr std::size_t kMaxSecondsDigits = 12;  // beyond the year 30000

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

replication::Sha256Mac Mac(absl::string_view secret, const cohort::v1::JoinRequest& request,
                           absl::string_view unix_seconds) {
  return replication::HmacSha256(secret, {kLabel, unix_seconds, "\n", Deterministic(request)});
}

absl::Status Refused(absl::string_view why) { return absl::UnauthenticatedError(std::string(why)); }

}  // namespace

JoinProof MakeJoinProof(absl::string_view secret, const cohort::v1::JoinRequest& request, absl::Time now) {
  JoinProof proof;
  proof.unix_seconds = absl::StrCat(absl::ToUnixSeconds(now));
  const replication::Sha256Mac mac = Mac(secret, request, proof.unix_seconds);
  proof.mac_hex = absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac.data()), mac.size()));
  return proof;
}

absl::Status CheckJoinProof(absl::string_view secret, const cohort::v1::JoinRequest& request,
                            std::optional<absl::string_view> mac_hex, std::optional<absl::string_view> unix_seconds,
                            absl::Time now) {
  if (!mac_hex.has_value() || !unix_seconds.has_value()) {
    return Refused(absl::StrCat("Join needs the metadata ", kJoinAuthKey, " and ", kJoinAuthTimeKey,
                                ": start the joining replica with the group's --replica-secret-file"));
  }
  const auto hex_digit = [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); };
  if (mac_hex->size() != 2 * replication::Sha256Mac{}.size() || !absl::c_all_of(*mac_hex, hex_digit)) {
    return Refused(absl::StrCat(kJoinAuthKey, " is malformed: use 64 hex digits (HMAC-SHA256)"));
  }
  std::int64_t seconds = 0;
  if (unix_seconds->empty() || unix_seconds->size() > kMaxSecondsDigits ||
      !absl::c_all_of(*unix_seconds, [](char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)); }) ||
      !absl::SimpleAtoi(*unix_seconds, &seconds)) {
    return Refused(absl::StrCat(kJoinAuthTimeKey, " is malformed: use the Unix time in seconds, in decimal"));
  }
  const absl::Duration skew = absl::AbsDuration(absl::FromUnixSeconds(seconds) - now);
  if (skew > kJoinProofMaxSkew) {
    return Refused(absl::StrCat("the Join proof was made ", absl::FormatDuration(absl::Trunc(skew, absl::Seconds(1))),
                                " away from this replica's clock, more than ",
                                absl::FormatDuration(kJoinProofMaxSkew), ": check both clocks"));
  }
  const std::string sent = absl::HexStringToBytes(*mac_hex);
  if (!replication::MacEquals(Mac(secret, request, *unix_seconds), reinterpret_cast<const std::uint8_t*>(sent.data()))) {
    return Refused("the Join proof does not match this group's secret: the joining replica has another "
                   "--replica-secret-file");
  }
  return absl::OkStatus();
}

}  // namespace cohort::broker
