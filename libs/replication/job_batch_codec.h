#pragma once

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "libs/store/job_batch.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::replication {

// The log entries of a ReplicatedJobStore: a committed store::JobBatch, or a barrier
// (a marker a new leader commits to learn that everything before its term is applied).
//
// Format, version 1 (integers little-endian, fixed width):
//   u8 version (1), u8 kind (1 batch, 2 barrier); a barrier ends there. A batch goes on:
//   i64 max_event_sequence, u8 has_trim (0/1), i64 trim_events_before (0 unless has_trim),
//   u32 record count, then per record: u8 family (store::Family), u8 erase (0/1),
//   u32 key size, key, u32 value size, value (empty when erase). Nothing follows.
// A reader refuses what it cannot read exactly (see DecodeEntry); a new version is a
// new version byte, read by replicas upgraded before any leader writes it.

// Bytes of an encoded batch beyond its records' keys and values: the fixed header and
// kRecordOverheadBytes per record. A log's entry limit must cover a store's BatchLimits.
inline constexpr std::size_t kBatchHeaderBytes = 23;
inline constexpr std::size_t kRecordOverheadBytes = 10;

// The entry for `batch` (which must be committable: batch.status() is OK).
std::string EncodeJobBatch(const store::JobBatch& batch);

// One batch entry holding `batches` (each committable, at least one) merged in order,
// as RocksJobStore's group commit merges them into one write: every record in commit
// order (a later record of a key overrides an earlier one), the highest
// max_event_sequence, and the highest trim_events_before, applied after the records.
// The same format as EncodeJobBatch: a replica of any build that reads version 1
// applies it. Its size is kBatchHeaderBytes + the sum of MergedBytes(batch).
std::string EncodeJobBatches(absl::Span<const store::JobBatch* const> batches);

// What `batch` adds to a merged entry: its keys and values and the per-record overhead.
std::size_t MergedBytes(const store::JobBatch& batch);

// The barrier entry.
std::string EncodeBarrier();

// A decoded entry: a barrier, or a batch's content, whose records are views into the
// entry (valid as long as the entry's bytes are).
struct DecodedEntry {
  bool barrier = false;
  store::ReplicatedBatch batch;  // empty for a barrier
};

// Decodes an entry that EncodeJobBatch or EncodeBarrier wrote. DATA_LOSS, naming what
// is wrong, for anything else: truncated or with trailing bytes, an unknown kind or
// family, a flag other than 0/1, a record count that cannot fit, an erase carrying a
// value, an empty key. UNIMPLEMENTED for a version this build does not read. Never
// reads outside `entry`. O(entry size).
absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view entry);

}  // namespace cohort::replication
