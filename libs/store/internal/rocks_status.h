#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/status.h"

namespace cohort::store::internal {

// Maps a RocksDB status to the canonical code a caller can act on, with `what` (the
// operation) and RocksDB's message: Corruption -> DATA_LOSS, NoSpace ->
// RESOURCE_EXHAUSTED, Busy/TryAgain/ShutdownInProgress -> UNAVAILABLE, TimedOut ->
// DEADLINE_EXCEEDED, other I/O errors -> INTERNAL.
absl::Status FromRocks(const rocksdb::Status& status, absl::string_view what);

}  // namespace cohort::store::internal
