#include "libs/replication/replicated_job_store.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "libs/replication/job_batch_codec.h"
#include "libs/runtime/check.h"

namespace cohort::replication {
namespace {

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
  std::function<void(const store::SyncReport&)> on_sync = std::move(options.local.on_sync);
  options.local.on_sync = nullptr;
  absl::StatusOr<std::unique_ptr<store::RocksJobStore>> local = store::RocksJobStore::Open(std::move(options.local));
  if (!local.ok()) return local.status();
  std::unique_ptr<ReplicatedJobStore> replicated(
      new ReplicatedJobStore(limits, std::move(on_sync), *std::move(local)));
  absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(std::move(options.raft), replicated->machine_.get());
  if (!log.ok()) {
    replicated->stopped_ = true;
    return log.status();
  }
  replicated->log_ = *std::move(log);
  return replicated;
}

ReplicatedJobStore::ReplicatedJobStore(store::BatchLimits limits,
                                       std::function<void(const store::SyncReport&)> on_sync,
                                       std::unique_ptr<store::RocksJobStore> local)
    : limits_(limits),
      on_sync_(std::move(on_sync)),
      local_(std::move(local)),
      machine_(std::make_unique<JobStoreMachine>(local_.get())) {}

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

void ReplicatedJobStore::SetStatusListener(std::function<void(const LogStatus&)> listener) {
  machine_->SetStatusListener(std::move(listener));
}

ReplicaCounters ReplicatedJobStore::counters() const { return machine_->counters(); }

absl::StatusOr<std::string> ReplicatedJobStore::ExportLocal() const {
  if (stopped_.load()) return Stopped();
  return local_->Export();
}

runtime::Task<absl::StatusOr<store::RecoveredState>> ReplicatedJobStore::Recover() {
  if (stopped_.load()) co_return Stopped();
  co_return co_await local_->Recover();
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
  // The log refuses too, but a follower need not encode what it will not append.
  if (LogStatus s = log_->status(); s.role != Role::kLeader) co_return NotLeaderError(s.leader);
  const std::size_t records = batch.records();
  const std::size_t bytes = batch.bytes();
  const absl::Time start = absl::Now();
  absl::StatusOr<LogPosition> at = co_await log_->Propose(EncodeJobBatch(batch));
  const absl::Duration latency = absl::Now() - start;
  commits_.fetch_add(1, std::memory_order_relaxed);
  commit_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
  if (at.ok()) {
    records_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    failed_.fetch_add(1, std::memory_order_relaxed);
  }
  if (on_sync_) on_sync_(store::SyncReport{1, records, bytes, latency, at.ok()});
  co_return at.status();
}

runtime::Task<absl::Status> ReplicatedJobStore::Barrier() {
  if (stopped_.load()) co_return Stopped();
  if (LogStatus s = log_->status(); s.role != Role::kLeader) co_return NotLeaderError(s.leader);
  absl::StatusOr<LogPosition> at = co_await log_->Propose(EncodeBarrier());
  co_return at.status();
}

store::JobStoreStats ReplicatedJobStore::stats() const {
  store::JobStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.syncs = s.commits;
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.failed_syncs = failed_.load(std::memory_order_relaxed);
  s.sync_time = absl::Nanoseconds(commit_nanos_.load(std::memory_order_relaxed));
  return s;
}

}  // namespace cohort::replication
