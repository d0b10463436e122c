#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>

#include "absl/status/status.h"
#include "libs/replication/replicated_log.h"
#include "libs/runtime/event_loop.h"
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
  // Entries proposed and not yet answered (etcd/raft's MaxInflightMsgs, per entry).
  // 1: one at a time, each proposed once the previous one was answered. 1 by default:
  // through the whole broker (repl_bench, load 6-8) 4 in flight made entries smaller
  // (3.3 commits each instead of 8.5), so libraft snapshotted on its thread more often,
  // and the round trip's p99 rose from 15-21 ms to 30-46 ms with no throughput gain.
  std::size_t max_entries_in_flight = 1;
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

// Group commit over a ReplicatedLog: concurrent commits share log entries, and up to
// max_entries_in_flight entries are in flight at once. While that many are in
// flight the commits that arrive queue up and go out together, in arrival order, as the
// next entry (job_batch_codec.h's EncodeJobBatches: applied as one write, as
// RocksJobStore merges a group), within CommitMergerOptions. (Raft leaders commonly
// batch proposals queued while busy into one append and pipeline appends: NATS
// JetStream, etcd's raftNode per Ready with MaxInflightMsgs.)
//
// Guarantees:
// - A Commit completes OK only once the entry holding its batch is committed on a
//   majority and applied locally (ReplicatedLog::Propose), and every entry proposed
//   before it was answered OK, so also every batch committed before it.
// - Order: entries are proposed (appended to the log) in the order their commits
//   arrived, and answered in that order. Commits called one after another on one loop
//   reach the log in that order even while several entries are in flight: all entries
//   in flight were proposed from one loop (a commit from another loop waits until they
//   are answered, then proposes), and an entry is built and handed to the log in one
//   turn of that loop.
// - Failure: when an entry fails, its commits, the commits of every entry proposed
//   after it and every commit queued or arriving until those are answered fail (none
//   is acknowledged), and nothing more is proposed until then. A later entry that had
//   failed too answers with its own status; one that committed answers ABORTED (it
//   committed, but after an entry that did not: the outcome is unknown to its callers,
//   as ABORTED promises). Queued commits answer with the failed entry's status
//   (UNAVAILABLE with a LeaderHint, ABORTED, CANCELLED, ...; see ReplicatedLog::Propose):
//   they were not appended at all, and ABORTED's "may have committed" covers "did not".
//
// Who proposes: a waiting commit. A Commit that may propose (nothing queued, fewer than
// max_entries_in_flight entries in flight, all from its loop) proposes its own batch
// with whatever is queued by then; otherwise it queues, and the proposer of an entry
// or the commit that answers one hands the next entry to the oldest queued commit
// (resumed on its own loop). So no thread or task of its own, and every proposal
// belongs to a Commit call that has not returned yet.
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
    runtime::EventLoop* loop;  // the caller's
  };
  // An entry proposed and not yet answered; lives in its proposer's frame.
  struct Entry {
    // Set while its Propose has returned but an earlier entry is still unanswered.
    std::optional<runtime::Completer<void>> release;
  };

  // Proposes `own` with the queued commits that fit, and hands on (see above). Called
  // holding the proposer's role.
  runtime::Task<absl::Status> ProposeEntry(const store::JobBatch& own);
  // Under mu_: whether a commit on `loop` may propose at once.
  bool MayPropose(runtime::EventLoop* loop) const;
  // Under mu_: the queued commit that proposes next, if one may now (it then holds the
  // role); the caller resumes it once mu_ is released.
  std::optional<Waiter> TakeNextProposer();

  ReplicatedLog* const log_;
  const CommitMergerOptions options_;
  const std::function<void(const store::SyncReport&)> on_entry_;

  std::mutex mu_;
  // Guarded by mu_:
  bool proposing_ = false;                    // a commit holds the role (not yet proposed)
  std::uint64_t role_epoch_ = 0;              // failure_epoch_ when the role was given
  std::deque<Waiter> queue_;                  // commits not in any entry yet, oldest first
  std::deque<Entry*> pipeline_;               // entries in flight, in log order
  runtime::EventLoop* pump_loop_ = nullptr;   // where the entries in flight were proposed
  std::optional<absl::Status> failure_;       // the first failed entry's, while later ones are in flight
  std::uint64_t failure_epoch_ = 0;           // entries that failed first (epochs of failure_)
  absl::Status last_failure_;                 // failure_'s status, kept after it drained

  std::atomic<std::uint64_t> commits_{0}, entries_{0}, failed_{0}, records_{0}, bytes_{0}, largest_{0};
  std::atomic<std::int64_t> propose_nanos_{0};
};

}  // namespace cohort::replication
