#include "libs/replication/replicated_job_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "libs/common/log.h"
#include "libs/replication/job_batch_codec.h"
#include "libs/runtime/check.h"

namespace cohort::replication {
namespace {

const log::Logger kLog("replication");

absl::Status Stopped() { return absl::UnavailableError("the replicated job store is stopped"); }

// True when `dir` is `base` or inside it (textually: both as configured).
bool SameOrInside(absl::string_view dir, absl::string_view base) {
  while (base.size() > 1 && base.back() == '/') base.remove_suffix(1);
  while (dir.size() > 1 && dir.back() == '/') dir.remove_suffix(1);
  return dir == base || (absl::StartsWith(dir, base) && dir[base.size()] == '/');
}

}  // namespace

absl::StatusOr<std::unique_ptr<ReplicatedJobStore>> ReplicatedJobStore::Open(ReplicatedJobStoreOptions options) {
  if (options.local.path.empty()) return absl::InvalidArgumentError("ReplicatedJobStore: local.path is empty");
  if (SameOrInside(options.raft.dir, options.local.path) || SameOrInside(options.local.path, options.raft.dir)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ReplicatedJobStore: the raft dir \"%s\" and the store's path \"%s\" must be separate directories",
        options.raft.dir, options.local.path));
  }
  const store::BatchLimits limits = options.local.limits;
  const std::size_t largest_entry =
      kBatchHeaderBytes + limits.max_bytes + kRecordOverheadBytes * limits.max_records;
  if (options.raft.max_entry_bytes < largest_entry) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ReplicatedJobStore: raft.max_entry_bytes %d cannot hold a batch at the store's limits (%d bytes, %d "
        "records): use at least %d",
        options.raft.max_entry_bytes, limits.max_bytes, limits.max_records, largest_entry));
  }
  if (options.merge.max_entry_commits == 0 || options.merge.max_entry_bytes > options.raft.max_entry_bytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "ReplicatedJobStore: merge.max_entry_commits must be positive and merge.max_entry_bytes (%d) at most "
        "raft.max_entry_bytes (%d)",
        options.merge.max_entry_bytes, options.raft.max_entry_bytes));
  }
  std::function<void(const store::SyncReport&)> on_sync = std::move(options.local.on_sync);
  options.local.on_sync = nullptr;
  absl::StatusOr<std::unique_ptr<store::RocksJobStore>> local = store::RocksJobStore::Open(std::move(options.local));
  if (!local.ok()) return local.status();
  const std::uint64_t store_index = (*local)->applied_index();
  std::unique_ptr<ReplicatedJobStore> replicated(new ReplicatedJobStore(limits, *std::move(local)));
  absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(std::move(options.raft), replicated->machine_.get());
  if (!log.ok()) {
    replicated->stopped_ = true;
    return log.status();
  }
  replicated->log_ = *std::move(log);
  // Where this replica starts from: what its store holds, and what its raft log holds
  // (libraft has loaded its snapshot, restoring the store from it if that was later).
  const ReplicationProgress loaded = replicated->log_->progress();
  kLog.Info("replica opened its store and raft log",
            {{"store_applied_index", store_index},
             {"store_applied_index_after_load", replicated->local_->applied_index()},
             {"raft_snapshot_index", loaded.snapshot_index},
             {"raft_first_index", loaded.first_index},
             {"raft_last_index", loaded.last_index},
             {"raft_commit_index", loaded.commit_index}});
  replicated->merger_ = std::make_unique<CommitMerger>(replicated->log_.get(), options.merge, std::move(on_sync));
  return replicated;
}

ReplicatedJobStore::ReplicatedJobStore(store::BatchLimits limits, std::unique_ptr<store::RocksJobStore> local)
    : limits_(limits), local_(std::move(local)), machine_(std::make_unique<JobStoreMachine>(local_.get())) {}

ReplicatedJobStore::~ReplicatedJobStore() { Stop(); }

void ReplicatedJobStore::Stop() {
  if (stopped_.exchange(true)) return;
  // The log first: after its Stop no StateMachine call touches the store.
  if (log_) log_->Stop();
  local_.reset();
}

LogStatus ReplicatedJobStore::status() const {
  if (!log_) return LogStatus{};
  return log_->status();
}

ReplicationProgress ReplicatedJobStore::progress() const {
  if (!log_) return ReplicationProgress{};
  return log_->progress();
}

runtime::Task<absl::Status> ReplicatedJobStore::AddMember(Member member) {
  if (stopped_ || !log_) co_return Stopped();
  co_return co_await log_->AddMember(member);
}

runtime::Task<absl::Status> ReplicatedJobStore::RemoveMember(std::uint64_t id) {
  if (stopped_ || !log_) co_return Stopped();
  co_return co_await log_->RemoveMember(id);
}

runtime::Task<absl::Status> ReplicatedJobStore::TransferLeadership(std::uint64_t to) {
  if (stopped_ || !log_) co_return Stopped();
  co_return co_await log_->TransferLeadership(to);
}

void ReplicatedJobStore::SetStatusListener(std::function<void(const LogStatus&)> listener) {
  machine_->SetStatusListener(std::move(listener));
}

ReplicaCounters ReplicatedJobStore::counters() const { return machine_->counters(); }

absl::StatusOr<std::string> ReplicatedJobStore::ExportLocal() const {
  if (stopped_.load()) return Stopped();
  return local_->Export();
}

runtime::Task<absl::StatusOr<std::unique_ptr<store::JobRecovery>>> ReplicatedJobStore::Recover(
    store::RecoverOptions options) {
  if (stopped_.load()) co_return Stopped();
  co_return co_await local_->Recover(options);
}

runtime::Task<absl::StatusOr<cohort::v1::Job>> ReplicatedJobStore::GetJob(std::string id) {
  if (stopped_.load()) co_return Stopped();
  co_return co_await local_->GetJob(std::move(id));
}

runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReplicatedJobStore::ReadEvents(
    std::int64_t from_sequence, std::size_t max_count, std::size_t max_bytes) {
  if (stopped_.load()) co_return Stopped();
  co_return co_await local_->ReadEvents(from_sequence, max_count, max_bytes);
}

runtime::Task<absl::Status> ReplicatedJobStore::Commit(store::JobBatch batch) {
  if (absl::Status s = batch.CheckCommittable(limits_); !s.ok()) co_return s;
  if (batch.empty()) co_return absl::OkStatus();
  if (stopped_.load()) co_return Stopped();
  // The log refuses too, but a follower need not queue what it will not append.
  if (LogStatus s = log_->status(); s.role != Role::kLeader) co_return NotLeaderError(s.leader);
  co_return co_await merger_->Commit(batch);
}

runtime::Task<absl::Status> ReplicatedJobStore::Barrier() {
  if (stopped_.load()) co_return Stopped();
  if (LogStatus s = log_->status(); s.role != Role::kLeader) co_return NotLeaderError(s.leader);
  absl::StatusOr<LogPosition> at = co_await log_->Propose(EncodeBarrier());
  co_return at.status();
}

store::JobStoreStats ReplicatedJobStore::stats() const {
  store::JobStoreStats s;
  if (!merger_) return s;
  const CommitMergerStats m = merger_->stats();
  s.commits = m.commits;
  s.syncs = m.entries;
  s.records = m.records;
  s.bytes = m.bytes;
  s.failed_syncs = m.failed_entries;
  s.sync_time = absl::Nanoseconds(m.propose_nanos);
  return s;
}

}  // namespace cohort::replication
