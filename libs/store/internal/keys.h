#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"

// Key encodings of the store's column families, shared by every JobStore so that they
// order entries identically. All integers are big-endian with the sign bit flipped, so
// byte order is numeric order.
namespace cohort::store::internal {

// Job ids and meta keys are 1..kMaxKeyLength printable ASCII bytes (0x20-0x7e), so
// every encoded key in every family sorts below kAfterAllKeys: the upper bound for
// full scans (RocksDB iterators always get an iterate_upper_bound).
inline constexpr std::size_t kMaxKeyLength = 256;
inline const std::string& AfterAllKeys() {
  static const std::string* const bound = new std::string(9, '\xff');
  return *bound;
}

// Empty, longer than kMaxKeyLength or not printable ASCII: INVALID_ARGUMENT naming `what`.
absl::Status CheckPrintableKey(absl::string_view what, absl::string_view key);

// ready: queue \0 ~priority sequence id, so that a scan yields each queue's jobs in
// dispatch order (higher priority first, then lower sequence). The id makes it unique.
std::string ReadyKey(absl::string_view queue, std::int32_t priority, std::int64_t sequence,
                     absl::string_view job_id);
struct DecodedReadyKey {
  std::string queue;
  std::int32_t priority;
  std::int64_t sequence;
  std::string job_id;
};
absl::StatusOr<DecodedReadyKey> DecodeReadyKey(absl::string_view key);

// pending: not_before (ns since the epoch) id.
std::string PendingKey(absl::Time not_before, absl::string_view job_id);
struct DecodedPendingKey {
  absl::Time not_before;
  std::string job_id;
};
absl::StatusOr<DecodedPendingKey> DecodePendingKey(absl::string_view key);

// events: sequence.
std::string EventKey(std::int64_t sequence);
absl::StatusOr<std::int64_t> DecodeEventKey(absl::string_view key);

// The index keys a stored version of a job implies: a ready key iff QUEUED, a pending
// key iff PENDING with not_before.
std::optional<std::string> ReadyKeyOf(const cohort::v1::Job& job);
std::optional<std::string> PendingKeyOf(const cohort::v1::Job& job);

}  // namespace cohort::store::internal
