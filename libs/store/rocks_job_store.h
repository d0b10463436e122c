#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/runtime/thread_pool.h"
#include "libs/store/job_store.h"
#include "rocksdb/db.h"

namespace cohort::store {

// What one synced write of RocksJobStore carried, for metrics (commit batch size,
// sync latency).
struct SyncReport {
  std::size_t commits;  // Commit calls merged into this write
  std::size_t records;
  std::size_t bytes;
  absl::Duration latency;  // of the synced write alone
  bool ok;
};

struct RocksJobStoreOptions {
  // Directory of the database; created if missing.
  std::string path;
  BatchLimits limits = {};
  // Batches waiting when a synced write starts are merged into one write up to this
  // many bytes (at least one batch per write).
  std::size_t max_group_bytes = 64 << 20;
  // The memtables of all column families together are flushed once they hold this
  // many bytes (RocksDB's db_write_buffer_size), so the store's write buffers stay
  // within it however many jobs pass through (RocksDB's default is 64 MiB per family).
  std::size_t max_write_buffer_bytes = 16 << 20;
  // Runs the reads (Recover, GetJob, ReadEvents); null means ThreadPool::Default().
  runtime::ThreadPool* read_pool = nullptr;
  // Inline commits: a Commit made while the store is idle (no synced write in flight,
  // none queued) from a loop with nothing else to do (no other runnable, no post
  // waiting) is written and synced on the caller's thread instead of the writer's,
  // saving two thread hand-offs; its task still resumes only on a later turn of its
  // loop. Under load, commits keep going to the writer and share its synced writes.
  bool inline_commits = true;
  // Called after every synced write, on the thread that made it (the writer, or a
  // loop writing inline); must be thread-safe and quick.
  std::function<void(const SyncReport&)> on_sync = nullptr;
};

// One record of a ReplicatedBatch: as JobBatch::Record, but its key and value are views
// (into the log entry it was decoded from), valid as long as what they point into.
struct ReplicatedRecord {
  Family family;
  bool erase;
  absl::string_view key;
  absl::string_view value;
};

// The content of one committed JobBatch as a replicated log carries it: libs/replication
// encodes a JobBatch into a log entry and decodes it into this on every replica, without
// copying a key or a value (ApplyReplicated writes them from the entry itself).
struct ReplicatedBatch {
  std::vector<ReplicatedRecord> records;
  std::int64_t max_event_sequence = 0;  // JobBatch::max_event_sequence()
  std::optional<std::int64_t> trim_events_before;
};

// The JobStore on RocksDB, one column family per part (jobs, ready, pending, events,
// meta, bulk_operations) in `path`. A database written before a family existed opens
// with that family created empty.
//
// Group commit: at most one synced (WAL-fsync'ed) write is in flight. Batches committed
// meanwhile queue up for the writer thread, which merges them into its next single
// synced write, in commit order; each Commit resumes on its caller's loop (via Post)
// only once the write holding its batch is synced. A merged write succeeds or fails as
// a whole, for every batch in it.
//
// Inline commits (RocksJobStoreOptions::inline_commits): when nothing is in flight or
// queued and the caller's loop has nothing else ready, the caller's thread makes the
// synced write of its one batch itself, then resumes its task on the loop's next turn,
// like any completion. The loop is blocked for that one write (a WAL fsync: ~0.16 ms
// on an idle disk, milliseconds on a busy one), time it would have spent waiting for
// the writer's answer with nothing else to do, unless work arrives meanwhile. Writes
// stay in commit order (an inline write starts only when every earlier commit's write
// has ended, and the writer waits for it), and a Commit of a loop resumes only after
// every earlier Commit of that loop has resumed (their completions were no longer
// waiting in the loop's posts).
//
// Threading: any number of loops may call it concurrently; reads run on read_pool.
// Replicated mode: ApplyReplicated, Export and Import are the synchronous hooks of a
// replicated log's state machine (libs/replication/replicated_job_store.h). They run on
// the caller's thread, bypass the group commit (no SyncReport, no stats) and are
// serialised with the writer thread's writes, so they are safe alongside Commit and the
// reads; a reader sees each of their writes entirely or not at all.
//
// Ownership: the store owns the database and its writer thread. Destroying it
// finishes the writes already queued (their callers' loops must still exist), then
// closes the database; no call may be in flight or start afterwards.
class RocksJobStore final : public JobStore {
 public:
  // Opens (creating if needed) the database in options.path. Blocks on I/O: call it at
  // start-up, before serving.
  static absl::StatusOr<std::unique_ptr<RocksJobStore>> Open(RocksJobStoreOptions options);
  ~RocksJobStore() override;
  RocksJobStore(const RocksJobStore&) = delete;
  RocksJobStore& operator=(const RocksJobStore&) = delete;

  // The JobRecovery reads on read_pool, one page ahead of its caller, and holds a
  // RocksDB snapshot until destroyed (which waits for a read in flight).
  runtime::Task<absl::StatusOr<std::unique_ptr<JobRecovery>>> Recover(RecoverOptions options) override;
  runtime::Task<absl::Status> Commit(JobBatch batch) override;
  runtime::Task<absl::StatusOr<cohort::v1::Job>> GetJob(std::string id) override;
  runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReadEvents(
      std::int64_t from_sequence, std::size_t max_count, std::size_t max_bytes) override;
  JobStoreStats stats() const override;
  BatchLimits limits() const override { return options_.limits; }

  // ---- Replicated mode -----------------------------------------------------------------
  // The log index of the last replicated write (ApplyReplicated or Import), 0 if none.
  // It is stored in RocksDB's default family, in the same atomic write as the data it
  // covers. Any thread.
  std::uint64_t applied_index() const { return applied_index_.load(std::memory_order_acquire); }

  // Writes `batch` and `index` as the applied index in one atomic write. The WAL is
  // written but not fsync'ed: the replicated log is the durability, and a replica that
  // lost the tail of its WAL replays those entries from the log (its applied index was
  // lost with them, in the same write). An index at or below applied_index() is a replay
  // of what the store holds: nothing is written and OK is returned. The batch is not
  // checked against BatchLimits (its leader did). Errors are RocksDB's (as FromRocks).
  absl::Status ApplyReplicated(const ReplicatedBatch& batch, std::uint64_t index);

  // Every key and value of every family, the applied index included, read from one
  // RocksDB snapshot, in the format Import reads. O(store size) in memory.
  // CANCELLED as soon as `*cancel` is seen set (checked every 1,024 records).
  absl::StatusOr<std::string> Export(const std::atomic<bool>* cancel = nullptr) const;

  // Replaces the contents of every family with `exported` (from Export, possibly of
  // another replica) in one atomic, synced write, and sets the applied index to the
  // exported one or `at_least_index`, whichever is higher. DATA_LOSS when `exported` is
  // malformed or truncated (it is checked whole before anything is written): then
  // nothing changes.
  absl::Status Import(absl::string_view exported, std::uint64_t at_least_index);

 private:
  struct PendingCommit;
  class RocksJobRecovery;
  static constexpr int kFamilies = 6;

  RocksJobStore(RocksJobStoreOptions options, std::unique_ptr<rocksdb::DB> db,
                std::vector<rocksdb::ColumnFamilyHandle*> handles, std::int64_t last_event_sequence,
                std::uint64_t applied_index);
  rocksdb::ColumnFamilyHandle* handle(Family family) const { return handles_[static_cast<int>(family)]; }
  runtime::ThreadPool& read_pool() const;
  void Enqueue(PendingCommit* commit);
  void WriterLoop();
  // True (and the writer held off until EndInline) if the caller may write a commit
  // inline now; see "Inline commits".
  bool TryBeginInline();
  void EndInline();
  // Makes one synced write of `batches`, in order, and accounts for it (stats,
  // on_sync). Any thread; serialised by write_mu_.
  absl::Status WriteBatches(const std::vector<const JobBatch*>& batches);
  // Stages each record (JobBatch::Record or ReplicatedRecord) into `write`.
  template <typename Record>
  absl::Status StageRecords(const std::vector<Record>& records, rocksdb::WriteBatch& write) const;
  // Deletes the events below trim_before, but never the newest (last_sequence).
  absl::Status StageTrim(std::int64_t trim_before, std::int64_t last_sequence, rocksdb::WriteBatch& write) const;
  absl::StatusOr<std::unique_ptr<JobRecovery>> RecoverNow(RecoverOptions options) const;
  absl::Status ScanFamily(Family family, const rocksdb::Snapshot* snapshot,
                          absl::FunctionRef<absl::Status(absl::string_view, absl::string_view)> fn) const;

  const RocksJobStoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  // Indexed by Family; handles_[kFamilies] is RocksDB's default family (unused).
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;

  std::mutex mu_;
  std::condition_variable wake_writer_;
  std::deque<PendingCommit*> queue_;  // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  bool writer_busy_ = false;          // guarded by mu_: the writer is writing or completing a group
  bool inline_busy_ = false;          // guarded by mu_: a caller is writing inline

  // Held by every write (the writer thread's and the replicated ones) from reading
  // last_event_sequence_ to storing it back.
  std::mutex write_mu_;
  std::atomic<std::int64_t> last_event_sequence_;
  std::atomic<std::uint64_t> applied_index_;
  std::atomic<std::uint64_t> commits_{0}, syncs_{0}, records_{0}, bytes_{0}, failed_syncs_{0}, inline_commits_{0};
  std::atomic<std::int64_t> sync_nanos_{0};

  std::thread writer_;  // last: starts once everything above is initialised
};

}  // namespace cohort::store
