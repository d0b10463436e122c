#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "absl/status/status.h"
#include "libs/replication/replicated_log.h"
#include "libs/runtime/external_completion.h"
#include "libs/runtime/task.h"
#include "libs/store/job_batch.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::replication {

// Bounds on one merged log entry.
struct CommitMergerOptions {
  // Encoded bytes of one entry (job_batch_codec.h: header + MergedBytes of each batch).
  // A batch larger than this on its own still goes, alone.
  std::size_t max_entry_bytes = 4 << 20;
  // Commits in one entry.
  std::size_t max_entry_commits = 256;
};

// What one merged entry did, for metrics and tests. Cumulative since construction;
// readable from any thread.
struct CommitMergerStats {
  std::uint64_t commits = 0;         // Commit calls whose entry was proposed
  std::uint64_t entries = 0;         // entries proposed (each one or more commits)
  std::uint64_t failed_entries = 0;  // of those, the ones whose Propose failed
  std::uint64_t records = 0;         // records in entries that committed
  std::uint64_t bytes = 0;           // key + value bytes in entries that committed
  std::uint64_t largest_entry_commits = 0;
  std::int64_t propose_nanos = 0;    // total time from Propose to its outcome
};

// Group commit over a ReplicatedLog: concurrent commits share one log entry. At most
// one entry is in flight; the commits that arrive meanwhile queue up and go out
// together, in arrival order, as the next entry (job_batch_codec.h's EncodeJobBatches:
// applied as one write, as RocksJobStore merges a group), within CommitMergerOptions.
// (Raft leaders commonly batch proposals queued while busy into one append: NATS
// JetStream, etcd's raftNode per Ready.)
//
// Guarantees: a Commit completes OK only once the entry holding its batch is committed
// on a majority and applied locally (ReplicatedLog::Propose), so also every batch
// committed before it. Entries carry commits in arrival order, and an entry's commits
// are answered before the next entry is proposed. When an entry fails, its
// commits and every commit queued behind it fail with that entry's status (UNAVAILABLE
// with a LeaderHint, ABORTED, CANCELLED, ...; see ReplicatedLog::Propose): none of them
// is acknowledged, and none queued behind a failed entry is appended after it (they
// were not appended at all; the entry's status is the conservative answer for them:
// ABORTED's "may have committed" covers "did not").
//
// Who proposes: the oldest waiting commit. A Commit that finds nothing in flight
// proposes its own batch with whatever is queued by then; when its entry is done it
// answers the others of its entry and hands the next entry to the oldest queued commit
// (resumed on its own loop). So no thread or task of its own, and every
// proposal belongs to a Commit call that has not returned yet.
//
// Threading: Commit from any loop; each resumes on its caller's loop. stats() from
// any thread. The log must outlive the merger, and every Commit must have returned
// before the merger is destroyed.
//
//   CommitMerger merger(&log, {}, on_entry);
//   absl::Status s = co_await merger.Commit(batch);   // batch: committable, not empty
class CommitMerger {
 public:
  // on_entry, if set, is called once per entry with its outcome (SyncReport: commits in
  // it, records, bytes, Propose latency), on the loop of the commit that proposed it,
  // before any of its commits resumes. It must be quick and thread-safe.
  CommitMerger(ReplicatedLog* log, CommitMergerOptions options,
               std::function<void(const store::SyncReport&)> on_entry = nullptr);
  CommitMerger(const CommitMerger&) = delete;
  CommitMerger& operator=(const CommitMerger&) = delete;

  // Commits `batch` (committable and not empty: the caller checks) as part of the next
  // entry. `batch` is read until the Commit completes, never changed.
  runtime::Task<absl::Status> Commit(const store::JobBatch& batch);

  CommitMergerStats stats() const;

 private:
  // A waiting commit's outcome: its status, or that it proposes the next entry.
  struct Turn {
    bool propose = false;
    absl::Status status;
  };
  struct Waiter {
    const store::JobBatch* batch;
    runtime::Completer<Turn> done;
  };

  // Proposes `own` with the queued commits that fit, and hands on (see above).
  runtime::Task<absl::Status> ProposeEntry(const store::JobBatch& own);

  ReplicatedLog* const log_;
  const CommitMergerOptions options_;
  const std::function<void(const store::SyncReport&)> on_entry_;

  std::mutex mu_;
  bool in_flight_ = false;      // guarded by mu_: some commit is proposing an entry
  std::deque<Waiter> queue_;    // guarded by mu_: empty unless in_flight_

  std::atomic<std::uint64_t> commits_{0}, entries_{0}, failed_{0}, records_{0}, bytes_{0}, largest_{0};
  std::atomic<std::int64_t> propose_nanos_{0};
};

}  // namespace cohort::replication
