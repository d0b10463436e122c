#include "libs/replication/job_store_machine.h"

#include <cstdlib>
#include <utility>

#include "absl/time/clock.h"
#include "libs/common/log.h"
#include "libs/replication/job_batch_codec.h"

namespace cohort::replication {
namespace {

const log::Logger kLog("replication");

[[noreturn]] void CannotApply(LogPosition at, const absl::Status& why) {
  kLog.Error("cannot apply a committed log entry: this replica stops",
             {{"index", at.index}, {"term", at.term}, {"error", why.ToString()}});
  std::abort();
}

}  // namespace

void JobStoreMachine::Apply(LogPosition at, absl::string_view entry) {
  if (at.index <= store_->applied_index()) {
    replayed_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(entry);
  if (!decoded.ok()) CannotApply(at, decoded.status());
  // A barrier writes only its index: after it, the store is known to hold every entry
  // committed before it.
  if (absl::Status s = store_->ApplyReplicated(decoded->batch, at.index); !s.ok()) CannotApply(at, s);
  applied_.fetch_add(1, std::memory_order_relaxed);
}

absl::StatusOr<std::string> JobStoreMachine::Snapshot() {
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> exported = store_->Export(&abandon_);
  const absl::Duration took = absl::Now() - start;
  if (absl::IsCancelled(exported.status())) return exported.status();  // the log is stopping
  if (!exported.ok()) {
    kLog.Warn("snapshot skipped: the store could not be exported", {{"error", exported.status().ToString()}});
    return exported.status();
  }
  taken_.fetch_add(1, std::memory_order_relaxed);
  snapshot_bytes_.store(exported->size(), std::memory_order_relaxed);
  const std::int64_t nanos = absl::ToInt64Nanoseconds(took);
  snapshot_nanos_.fetch_add(nanos, std::memory_order_relaxed);
  if (nanos > longest_snapshot_nanos_.load(std::memory_order_relaxed)) {
    longest_snapshot_nanos_.store(nanos, std::memory_order_relaxed);  // one snapshot at a time
  }
  if (took > kSlowSnapshot) {
    kLog.Warn("a slow snapshot export",
              {{"ms", absl::ToInt64Milliseconds(took)}, {"bytes", exported->size()}, {"index", store_->applied_index()}});
  }
  return exported;
}

absl::Status JobStoreMachine::Restore(LogPosition at, absl::string_view snapshot) {
  if (const std::uint64_t store_index = store_->applied_index(); store_index >= at.index) {
    kept_.fetch_add(1, std::memory_order_relaxed);
    kLog.Info("snapshot not restored: the store already holds a later state",
              {{"index", at.index}, {"term", at.term}, {"store_applied_index", store_index}});
    return absl::OkStatus();
  }
  if (absl::Status s = store_->Import(snapshot, at.index); !s.ok()) {
    kLog.Error("snapshot refused", {{"index", at.index}, {"term", at.term}, {"error", s.ToString()}});
    return s;
  }
  restored_.fetch_add(1, std::memory_order_relaxed);
  kLog.Info("store replaced by a snapshot", {{"index", at.index}, {"term", at.term}, {"bytes", snapshot.size()}});
  return absl::OkStatus();
}

void JobStoreMachine::OnStatusChange(const LogStatus& status) {
  std::function<void(const LogStatus&)> listener;
  {
    std::lock_guard<std::mutex> lock(listener_mu_);
    listener = listener_;
  }
  if (listener) listener(status);
}

void JobStoreMachine::SetStatusListener(std::function<void(const LogStatus&)> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
}

ReplicaCounters JobStoreMachine::counters() const {
  return ReplicaCounters{
      .entries_applied = applied_.load(std::memory_order_relaxed),
      .entries_replayed = replayed_.load(std::memory_order_relaxed),
      .snapshots_taken = taken_.load(std::memory_order_relaxed),
      .snapshots_restored = restored_.load(std::memory_order_relaxed),
      .snapshots_kept = kept_.load(std::memory_order_relaxed),
      .snapshot_bytes = snapshot_bytes_.load(std::memory_order_relaxed),
      .snapshot_nanos = snapshot_nanos_.load(std::memory_order_relaxed),
      .longest_snapshot_nanos = longest_snapshot_nanos_.load(std::memory_order_relaxed),
  };
}

}  // namespace cohort::replication
