#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>

#include "absl/time/time.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/replication/replicated_log.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::replication {

// What a replica's JobStoreMachine did, for metrics and tests. Cumulative since start.
struct ReplicaCounters {
  std::uint64_t entries_applied = 0;     // batches and barriers written to the store
  std::uint64_t entries_replayed = 0;    // at or below the store's applied index: skipped
  std::uint64_t snapshots_taken = 0;     // Snapshot() exports
  std::uint64_t snapshots_restored = 0;  // Restore() that replaced the store
  std::uint64_t snapshots_kept = 0;      // Restore() of a snapshot older than the store: kept the store
  std::uint64_t snapshot_bytes = 0;      // the last Snapshot()'s size
  std::int64_t snapshot_nanos = 0;       // Snapshot() time in all
  std::int64_t longest_snapshot_nanos = 0;
};

// The StateMachine of a ReplicatedJobStore: every committed entry (job_batch_codec.h)
// is written to this replica's RocksJobStore together with its log index, in one
// atomic write (RocksJobStore::ApplyReplicated), so an entry at or below the stored
// index is a replay and is skipped. Snapshot exports the whole store (every family and
// the applied index); Restore imports one, unless the store already holds a later
// state of the same log (a restart from a local snapshot older than the store: the
// committed prefix is the same on every replica, so the store is kept and the log
// replays only what it lacks).
//
// A Snapshot() that takes longer than kSlowSnapshot is logged (warning) with its size.
// It may run while Apply goes on (SnapshotsMayRunConcurrently: it reads one RocksDB
// snapshot, and the applied index it exports comes from that same snapshot), so a log
// that supports it (RaftLog) exports off its own thread.
//
// A committed entry that cannot be decoded or written aborts the process (the
// StateMachine contract: such a replica can no longer be one; it must be repaired or
// upgraded, and a restarted process replays from its snapshot and log). It writes
// nothing of that entry first.
//
// Threading: the StateMachine methods run on the log's thread, Snapshot possibly on
// another one (see StateMachine);
// SetStatusListener and counters() from any thread. The store must outlive it.
class JobStoreMachine final : public StateMachine {
 public:
  static constexpr absl::Duration kSlowSnapshot = absl::Milliseconds(100);

  explicit JobStoreMachine(store::RocksJobStore* store) : store_(store) {}

  void Apply(LogPosition at, absl::string_view entry) override;
  absl::StatusOr<std::string> Snapshot() override;
  absl::Status Restore(LogPosition at, absl::string_view snapshot) override;
  void OnStatusChange(const LogStatus& status) override;
  bool SnapshotsMayRunConcurrently() const override { return true; }
  // A Snapshot running or started afterwards returns CANCELLED (within 1,024 records).
  void AbandonSnapshots() override { abandon_.store(true, std::memory_order_relaxed); }

  // Called on the log's thread with every later status change (not with changes before
  // it was set: read the log's status() after setting it). Null clears it.
  void SetStatusListener(std::function<void(const LogStatus&)> listener);

  ReplicaCounters counters() const;

 private:
  store::RocksJobStore* const store_;
  std::mutex listener_mu_;
  std::function<void(const LogStatus&)> listener_;  // guarded by listener_mu_
  std::atomic<std::uint64_t> applied_{0}, replayed_{0}, taken_{0}, restored_{0}, kept_{0}, snapshot_bytes_{0};
  std::atomic<std::int64_t> snapshot_nanos_{0}, longest_snapshot_nanos_{0};
  std::atomic<bool> abandon_{false};
};

}  // namespace cohort::replication
