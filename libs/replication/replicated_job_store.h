#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/replication/commit_merger.h"
#include "libs/replication/job_store_machine.h"
#include "libs/replication/raft_log.h"
#include "libs/replication/replicated_log.h"
#include "libs/runtime/task.h"
#include "libs/store/job_store.h"
#include "libs/store/rocks_job_store.h"

namespace cohort::replication {

struct ReplicatedJobStoreOptions {
  // This replica's own RocksDB (path, limits, read pool). on_sync is called once per
  // log entry on the loop of the commit that proposed it (commits = the Commits merged
  // into it, latency = the whole replicated commit), since the local store's own synced
  // writes are not used.
  store::RocksJobStoreOptions local;
  // self, members, dir: a directory of its own, neither local.path nor inside it.
  // raft.max_entry_bytes must hold a batch at local.limits (see job_batch_codec.h) and
  // a merged entry (merge.max_entry_bytes).
  RaftLogOptions raft;
  // How many concurrent Commits one log entry may carry (CommitMerger).
  CommitMergerOptions merge;
};

// A store::JobStore whose Commit is an entry of a RaftLog: a batch is acknowledged only
// once committed on a majority and applied to this replica's local RocksDB. Every
// replica applies the same committed batches in log order to its own RocksJobStore
// (JobStoreMachine), writing the applied index in the same RocksDB write, so a
// restarted replica skips what it already holds. Snapshots carry the whole local store
// (jobs, indexes, events, meta, bulk records, applied index). Recover, GetJob and
// ReadEvents read the local store: on a follower, what it has applied so far. A
// JobRecovery reads the local store's snapshot and must be destroyed before Stop.
//
// Durability: a Commit completes after libraft fsync'ed the entry on a majority, so the
// local RocksDB write in Apply writes its WAL without fsync. Recovery still holds: a
// replica that loses the tail of its local writes (power loss) loses its applied index
// with them (same write), and on restart libraft replays its snapshot and every entry
// after it; the store skips what it holds and applies the rest.
//
// Commit errors: INVALID_ARGUMENT / RESOURCE_EXHAUSTED as any JobStore (nothing
// written); UNAVAILABLE with a LeaderHint on a replica that does not lead (nothing
// appended: retrying at the leader is safe); ABORTED when leadership was lost with the
// entry in flight, CANCELLED when the store stopped with it in flight: either way the
// outcome is unknown (the entry may still commit). Concurrent Commits share log
// entries (CommitMerger: one entry in flight; the commits that arrive meanwhile go out
// together as the next one, applied on every replica as one RocksDB write); when an
// entry fails, its commits and those queued behind it fail with its status.
//
// Threading: JobStore methods from any loop, as RocksJobStore; status(), counters(),
// SetStatusListener from any thread. Stop blocks. Every call must have returned before
// Stop; calls after it fail with UNAVAILABLE.
//
//   auto store = ReplicatedJobStore::Open(options);          // joins the group
//   store->SetStatusListener([](const LogStatus& s) { ... }); // role changes
//   if (absl::Status s = co_await store->Barrier(); s.ok()) {
//     auto recovery = co_await store->Recover({});  // the whole committed state (JobRecovery)
//   }
class ReplicatedJobStore final : public store::JobStore {
 public:
  // Opens the local store, then starts the raft member (which restores its snapshot and
  // replays its log into the store). INVALID_ARGUMENT for bad options; the local store's
  // or libraft's error otherwise. Blocks on I/O.
  static absl::StatusOr<std::unique_ptr<ReplicatedJobStore>> Open(ReplicatedJobStoreOptions options);
  ~ReplicatedJobStore() override;  // Stop()
  ReplicatedJobStore(const ReplicatedJobStore&) = delete;
  ReplicatedJobStore& operator=(const ReplicatedJobStore&) = delete;

  runtime::Task<absl::StatusOr<std::unique_ptr<store::JobRecovery>>> Recover(store::RecoverOptions options) override;
  runtime::Task<absl::Status> Commit(store::JobBatch batch) override;
  runtime::Task<absl::StatusOr<cohort::v1::Job>> GetJob(std::string id) override;
  runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReadEvents(
      std::int64_t from_sequence, std::size_t max_count, std::size_t max_bytes) override;
  // commits: Commits proposed to the log as its leader (ok or not); syncs: log entries
  // they went out in; failed_syncs: entries that failed; sync_time: the entries' total
  // latency; records, bytes: of the entries that committed.
  store::JobStoreStats stats() const override;

  // The merging of commits into entries (entries, commits per entry). Any thread.
  CommitMergerStats merge_stats() const { return merger_->stats(); }
  store::BatchLimits limits() const override { return limits_; }

  // This replica's view (role, term, leader, last_applied). Any thread; O(1).
  LogStatus status() const;

  // The log's replication progress (RaftLog::progress). Any thread.
  ReplicationProgress progress() const;

  // Membership changes (RaftLog::AddMember / RemoveMember), on the leader. From any
  // loop; UNAVAILABLE after Stop.
  runtime::Task<absl::Status> AddMember(Member member);
  runtime::Task<absl::Status> RemoveMember(std::uint64_t id);
  // Hands leadership to voter `to` (0: one that is up to date), on the leader
  // (RaftLog::TransferLeadership). From any loop; UNAVAILABLE after Stop.
  runtime::Task<absl::Status> TransferLeadership(std::uint64_t to);

  // Called on the raft thread whenever role, term or leader change; it must be quick
  // and must not call Stop. Changes before it is set are not replayed: read status()
  // after setting it.
  void SetStatusListener(std::function<void(const LogStatus&)> listener);

  // Completes once this replica leads and has applied every entry committed before its
  // term (it commits a barrier entry and waits for it to apply): after it, Recover()
  // returns the whole committed state. UNAVAILABLE with a LeaderHint if it does not
  // lead; ABORTED or CANCELLED if it lost leadership or stopped meanwhile.
  runtime::Task<absl::Status> Barrier();

  // What the state machine did (applied, replayed, snapshots). Any thread.
  ReplicaCounters counters() const;

  // The whole local store as a snapshot would carry it (RocksJobStore::Export): equal
  // bytes on two replicas that applied the same entries. For checks and tests.
  absl::StatusOr<std::string> ExportLocal() const;

  // Leaves the group (RaftLog::Stop: entries in flight fail with CANCELLED) and closes
  // the local store. Blocking; idempotent; not from the raft thread (a listener).
  void Stop();

 private:
  ReplicatedJobStore(store::BatchLimits limits, std::unique_ptr<store::RocksJobStore> local);

  const store::BatchLimits limits_;
  std::unique_ptr<store::RocksJobStore> local_;
  std::unique_ptr<JobStoreMachine> machine_;
  std::unique_ptr<RaftLog> log_;
  std::unique_ptr<CommitMerger> merger_;  // over log_
  std::atomic<bool> stopped_{false};
};

}  // namespace cohort::replication
