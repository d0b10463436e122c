#include "libs/store/internal/keys.h"

#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"

namespace cohort::store::internal {
namespace {

using cohort::v1::Job;

constexpr std::uint64_t kSignBit = std::uint64_t{1} << 63;

void AppendU64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void AppendU32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint64_t ReadU64(absl::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
std::uint32_t ReadU32(absl::string_view in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}
std::uint64_t OrderedI64(std::int64_t v) { return static_cast<std::uint64_t>(v) ^ kSignBit; }
std::int64_t FromOrderedI64(std::uint64_t v) { return static_cast<std::int64_t>(v ^ kSignBit); }

absl::Status Malformed(absl::string_view family, absl::string_view key) {
  return absl::DataLossError(absl::StrFormat("malformed %s index key %s: the store is corrupt",
                                             family, absl::CHexEscape(key)));
}

absl::Time ToTime(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace

absl::Status CheckPrintableKey(absl::string_view what, absl::string_view key) {
  if (key.empty() || key.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%s \"%s\" has %d bytes: use 1 to %d", what, absl::CHexEscape(key.substr(0, 64)), key.size(),
        kMaxKeyLength));
  }
  for (char c : key) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s \"%s\" is invalid: use printable ASCII", what, absl::CHexEscape(key)));
    }
  }
  return absl::OkStatus();
}

std::string ReadyKey(absl::string_view queue, std::int32_t priority, std::int64_t sequence,
                     absl::string_view job_id) {
  std::string key;
  key.reserve(queue.size() + 1 + 4 + 8 + job_id.size());
  key.append(queue.data(), queue.size());
  key.push_back('\0');
  // Flip the sign bit for numeric byte order, then invert so that higher comes first.
  AppendU32(key, ~(static_cast<std::uint32_t>(priority) ^ 0x80000000u));
  AppendU64(key, OrderedI64(sequence));
  key.append(job_id.data(), job_id.size());
  return key;
}

absl::StatusOr<DecodedReadyKey> DecodeReadyKey(absl::string_view key) {
  std::size_t nul = key.find('\0');
  if (nul == absl::string_view::npos || key.size() < nul + 1 + 4 + 8 + 1) return Malformed("ready", key);
  DecodedReadyKey out;
  out.queue = std::string(key.substr(0, nul));
  absl::string_view rest = key.substr(nul + 1);
  out.priority = static_cast<std::int32_t>(~ReadU32(rest) ^ 0x80000000u);
  out.sequence = FromOrderedI64(ReadU64(rest.substr(4)));
  out.job_id = std::string(rest.substr(12));
  return out;
}

std::string PendingKey(absl::Time not_before, absl::string_view job_id) {
  std::string key;
  key.reserve(8 + job_id.size());
  AppendU64(key, OrderedI64(absl::ToUnixNanos(not_before)));
  key.append(job_id.data(), job_id.size());
  return key;
}

absl::StatusOr<DecodedPendingKey> DecodePendingKey(absl::string_view key) {
  if (key.size() < 8 + 1) return Malformed("pending", key);
  return DecodedPendingKey{absl::FromUnixNanos(FromOrderedI64(ReadU64(key))), std::string(key.substr(8))};
}

std::string EventKey(std::int64_t sequence) {
  std::string key;
  AppendU64(key, OrderedI64(sequence));
  return key;
}

absl::StatusOr<std::int64_t> DecodeEventKey(absl::string_view key) {
  if (key.size() != 8) return Malformed("events", key);
  return FromOrderedI64(ReadU64(key));
}

std::optional<std::string> ReadyKeyOf(const Job& job) {
  if (job.state() != cohort::v1::JOB_STATE_QUEUED) return std::nullopt;
  return ReadyKey(job.spec().queue(), job.spec().priority(), job.sequence(), job.id());
}

std::optional<std::string> PendingKeyOf(const Job& job) {
  if (job.state() != cohort::v1::JOB_STATE_PENDING || !job.has_not_before()) return std::nullopt;
  return PendingKey(ToTime(job.not_before()), job.id());
}

}  // namespace cohort::store::internal
