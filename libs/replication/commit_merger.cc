#include "libs/replication/commit_merger.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "libs/replication/job_batch_codec.h"

namespace cohort::replication {

CommitMerger::CommitMerger(ReplicatedLog* log, CommitMergerOptions options,
                           std::function<void(const store::SyncReport&)> on_entry)
    : log_(log), options_(options), on_entry_(std::move(on_entry)) {}

runtime::Task<absl::Status> CommitMerger::Commit(const store::JobBatch& batch) {
  bool propose = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!in_flight_) in_flight_ = propose = true;
  }
  if (propose) co_return co_await ProposeEntry(batch);
  Turn turn = co_await runtime::ExternalCompletion<Turn>([this, &batch](runtime::Completer<Turn> done) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (in_flight_) {
        queue_.push_back(Waiter{&batch, done});
        return;
      }
      in_flight_ = true;  // the entry in flight ended meanwhile: this commit proposes
    }
    done(Turn{.propose = true});
  });
  if (turn.propose) co_return co_await ProposeEntry(batch);
  co_return turn.status;
}

runtime::Task<absl::Status> CommitMerger::ProposeEntry(const store::JobBatch& own) {
  std::vector<const store::JobBatch*> batches{&own};
  std::vector<Waiter> entry;  // the other commits in this entry, oldest first
  std::size_t bytes = kBatchHeaderBytes + MergedBytes(own);
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!queue_.empty() && batches.size() < options_.max_entry_commits) {
      const std::size_t next = MergedBytes(*queue_.front().batch);
      if (bytes + next > options_.max_entry_bytes) break;
      bytes += next;
      batches.push_back(queue_.front().batch);
      entry.push_back(queue_.front());
      queue_.pop_front();
    }
  }
  std::size_t records = 0, payload = 0;
  for (const store::JobBatch* b : batches) {
    records += b->records();
    payload += b->bytes();
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<LogPosition> at = co_await log_->Propose(EncodeJobBatches(batches));
  const absl::Duration latency = absl::Now() - start;

  std::optional<Waiter> next;
  std::deque<Waiter> behind;  // queued behind a failed entry: they fail with it
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Counted before the entry is released: the only entry in flight writes them.
    commits_.fetch_add(batches.size(), std::memory_order_relaxed);
    entries_.fetch_add(1, std::memory_order_relaxed);
    propose_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
    if (batches.size() > largest_.load(std::memory_order_relaxed)) {
      largest_.store(batches.size(), std::memory_order_relaxed);
    }
    if (at.ok()) {
      records_.fetch_add(records, std::memory_order_relaxed);
      bytes_.fetch_add(payload, std::memory_order_relaxed);
    } else {
      failed_.fetch_add(1, std::memory_order_relaxed);
    }
    if (!at.ok()) {
      behind.swap(queue_);
      in_flight_ = false;
    } else if (!queue_.empty()) {
      next = queue_.front();
      queue_.pop_front();
    } else {
      in_flight_ = false;
    }
  }
  if (on_entry_) on_entry_(store::SyncReport{batches.size(), records, payload, latency, at.ok()});

  // This entry's commits are answered before the next entry is proposed, so answers
  // go out in entry order on every loop. Only locals from here: once the waiters run,
  // the merger may go as soon as this Commit returns.
  const absl::Status status = at.status();
  for (const Waiter& w : entry) w.done(Turn{.status = status});
  for (const Waiter& w : behind) w.done(Turn{.status = status});
  if (next) next->done(Turn{.propose = true});
  co_return status;
}

CommitMergerStats CommitMerger::stats() const {
  return CommitMergerStats{
      .commits = commits_.load(std::memory_order_relaxed),
      .entries = entries_.load(std::memory_order_relaxed),
      .failed_entries = failed_.load(std::memory_order_relaxed),
      .records = records_.load(std::memory_order_relaxed),
      .bytes = bytes_.load(std::memory_order_relaxed),
      .largest_entry_commits = largest_.load(std::memory_order_relaxed),
      .propose_nanos = propose_nanos_.load(std::memory_order_relaxed),
  };
}

}  // namespace cohort::replication
