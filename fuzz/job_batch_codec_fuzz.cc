// Raft log entries as a replica reads them (libs/replication/job_batch_codec.h): every
// input either decodes or is refused with DATA_LOSS / UNIMPLEMENTED, never read out of
// bounds, with a bounded message; a decoded batch holds only valid records, and its
// header and records account for every byte of the input (its keys and values are views
// into it).
#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

#include "libs/replication/job_batch_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view entry(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<cohort::replication::DecodedEntry> decoded = cohort::replication::DecodeEntry(entry);
  if (!decoded.ok()) {
    const absl::StatusCode code = decoded.status().code();
    if (code != absl::StatusCode::kDataLoss && code != absl::StatusCode::kUnimplemented) __builtin_trap();
    if (decoded.status().message().size() > 256) __builtin_trap();  // bounded messages
    return 0;
  }
  if (decoded->barrier) {
    if (!decoded->batch.records.empty()) __builtin_trap();
    return 0;
  }
  const auto inside = [&entry](absl::string_view part) {
    return part.empty() || (part.data() >= entry.data() && part.data() + part.size() <= entry.data() + entry.size());
  };
  std::size_t bytes = 0;
  for (const cohort::store::ReplicatedRecord& r : decoded->batch.records) {
    if (r.key.empty() || (r.erase && !r.value.empty())) __builtin_trap();
    if (!inside(r.key) || !inside(r.value)) __builtin_trap();  // views into the entry, not copies
    bytes += r.key.size() + r.value.size() + cohort::replication::kRecordOverheadBytes;
  }
  // Everything decoded came from the input: header plus records, nothing after.
  if (bytes + cohort::replication::kBatchHeaderBytes != size) __builtin_trap();
  return 0;
}
