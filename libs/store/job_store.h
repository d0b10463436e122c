#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/runtime/task.h"
#include "libs/store/job_batch.h"
#include "libs/store/job_recovery.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store {

// Cumulative counters of a store's commit path, for metrics (commit batch size, sync
// latency). Readable from any thread.
struct JobStoreStats {
  std::uint64_t commits = 0;   // Commit calls that reached a synced write (ok or not)
  std::uint64_t syncs = 0;     // synced writes; each holds one or more commits
  std::uint64_t records = 0;   // records written by those syncs
  std::uint64_t bytes = 0;     // key + value bytes written by those syncs
  std::uint64_t failed_syncs = 0;
  std::uint64_t inline_commits = 0;  // of `commits`, those written on the caller's thread
  absl::Duration sync_time;    // total time spent in synced writes
};

// The broker's durable store of jobs, their ready and pending indexes, the event log,
// meta values and the records of bulk operations (design.md, "Storage").
//
// Threading: every method is called from a task on an event loop and its Task resumes
// on that caller's loop. Implementations say whether several loops may share a store.
// The store must outlive every call in flight (close a Gate before destroying it).
//
// Durability: Commit completes only after its whole batch is durable (for RocksDB: in a
// WAL that was fsync'ed), and a completed Commit is visible to every later read. A
// failed Commit may or may not have been written (the sync itself may have failed);
// a Commit rejected before writing (INVALID_ARGUMENT, RESOURCE_EXHAUSTED) wrote nothing.
//
// Cancellation: no method is cancellable once started (the I/O cannot be recalled); a
// cancellation that arrives meanwhile is raised at the caller's next suspension point,
// and a cancelled Commit may still have been written.
class JobStore {
 public:
  virtual ~JobStore() = default;

  // Opens a read of the whole store from one snapshot (see JobRecovery): the state
  // other than the jobs is read before it completes (O(index entries + meta + bulk
  // records)); the jobs are read page by page, as the caller asks for them.
  virtual runtime::Task<absl::StatusOr<std::unique_ptr<JobRecovery>>> Recover(RecoverOptions options) = 0;

  // Writes `batch` atomically and durably (see "Durability"). Group commit: batches
  // committed while a synced write is in progress share the next synced write, so
  // callers that commit concurrently pay for one sync between them.
  // INVALID_ARGUMENT: batch.status(); RESOURCE_EXHAUSTED: over the store's
  // BatchLimits. Either way nothing is written.
  virtual runtime::Task<absl::Status> Commit(JobBatch batch) = 0;

  // The stored job, or NOT_FOUND.
  virtual runtime::Task<absl::StatusOr<cohort::v1::Job>> GetJob(std::string id) = 0;

  // Up to max_count events with sequence >= from_sequence, in sequence order, whose
  // stored sizes add up to at most max_bytes (the first event is returned whatever its
  // size): what a read holds is bounded by bytes as well as by count. Fewer (possibly
  // none) when the log ends; events below the first one returned may have been
  // trimmed.
  virtual runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReadEvents(
      std::int64_t from_sequence, std::size_t max_count, std::size_t max_bytes) = 0;

  virtual JobStoreStats stats() const = 0;
  // The caps Commit enforces on one batch; a writer that must never be refused splits
  // its changes to stay within them.
  virtual BatchLimits limits() const = 0;
};

}  // namespace cohort::store
