#include "libs/replication/commit_merger.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/replication/job_batch_codec.h"

namespace cohort::replication {

CommitMerger::CommitMerger(ReplicatedLog* log, CommitMergerOptions options,
                           std::function<void(const store::SyncReport&)> on_entry)
    : log_(log), options_(options), on_entry_(std::move(on_entry)) {}

bool CommitMerger::MayPropose(runtime::EventLoop* loop) const {
  return !proposing_ && !failure_ && queue_.empty() && pipeline_.size() < options_.max_entries_in_flight &&
         (pipeline_.empty() || pump_loop_ == loop);
}

std::optional<CommitMerger::Waiter> CommitMerger::TakeNextProposer() {
  if (proposing_ || failure_ || queue_.empty() || pipeline_.size() >= options_.max_entries_in_flight) {
    return std::nullopt;
  }
  // Entries in flight all come from pump_loop_: another loop's commit waits for them.
  if (!pipeline_.empty() && queue_.front().loop != pump_loop_) return std::nullopt;
  proposing_ = true;
  role_epoch_ = failure_epoch_;
  Waiter next = queue_.front();
  queue_.pop_front();
  return next;
}

runtime::Task<absl::Status> CommitMerger::Commit(const store::JobBatch& batch) {
  runtime::EventLoop* const loop = runtime::EventLoop::Current();
  bool propose = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (failure_) co_return *failure_;
    if (MayPropose(loop)) {
      proposing_ = propose = true;
      role_epoch_ = failure_epoch_;
    }
  }
  if (propose) co_return co_await ProposeEntry(batch);
  Turn turn = co_await runtime::ExternalCompletion<Turn>([this, &batch, loop](runtime::Completer<Turn> done) {
    Turn now;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (failure_) {
        now.status = *failure_;
      } else if (MayPropose(loop)) {  // the entries in flight were answered meanwhile
        proposing_ = now.propose = true;
        role_epoch_ = failure_epoch_;
      } else {
        queue_.push_back(Waiter{&batch, done, loop});
        return;
      }
    }
    done(std::move(now));
  });
  if (turn.propose) co_return co_await ProposeEntry(batch);
  co_return turn.status;
}

runtime::Task<absl::Status> CommitMerger::ProposeEntry(const store::JobBatch& own) {
  runtime::EventLoop* const loop = runtime::EventLoop::Current();
  std::vector<const store::JobBatch*> batches{&own};
  std::vector<Waiter> entry;  // the other commits in this entry, oldest first
  Entry self;
  std::optional<Waiter> next;
  absl::Status refused;  // set when an entry failed after this commit got the role
  std::size_t bytes = kBatchHeaderBytes + MergedBytes(own);
  {
    std::lock_guard<std::mutex> lock(mu_);
    proposing_ = false;
    if (role_epoch_ != failure_epoch_) {
      // It was queued behind an entry that failed: it fails too, unproposed.
      refused = failure_ ? *failure_ : last_failure_;
    } else {
      while (!queue_.empty() && batches.size() < options_.max_entry_commits) {
        const std::size_t more = MergedBytes(*queue_.front().batch);
        if (bytes + more > options_.max_entry_bytes) break;
        bytes += more;
        batches.push_back(queue_.front().batch);
        entry.push_back(queue_.front());
        queue_.pop_front();
      }
      pipeline_.push_back(&self);
      pump_loop_ = loop;
    }
    next = TakeNextProposer();
  }
  if (!refused.ok()) {
    if (next) next->done(Turn{.propose = true});
    co_return refused;
  }
  // A next proposer on this loop resumes in a later turn of it, after this entry went
  // to the log (Propose hands it over before its first suspension).
  if (next) next->done(Turn{.propose = true});
  next.reset();

  std::size_t records = 0, payload = 0;
  for (const store::JobBatch* b : batches) {
    records += b->records();
    payload += b->bytes();
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<LogPosition> at = co_await log_->Propose(EncodeJobBatches(batches));
  const absl::Duration latency = absl::Now() - start;

  // Answers go out in log order: wait for the entries proposed before this one.
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = pipeline_.front() == &self;
  }
  if (!first) {
    co_await runtime::ExternalCompletion<void>([this, &self](runtime::Completer<void> go) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (pipeline_.front() != &self) {
          self.release = go;
          return;
        }
      }
      go();
    });
  }

  absl::Status answer;
  absl::Status failed;        // the first failed entry's status, for `behind`
  std::deque<Waiter> behind;  // queued behind a failed entry: they fail with it
  std::optional<runtime::Completer<void>> release;
  {
    std::lock_guard<std::mutex> lock(mu_);
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
    if (failure_) {
      answer = at.ok() ? absl::AbortedError(absl::StrCat("this log entry committed after one that failed (",
                                                         failure_->message(), "); its outcome is unknown"))
                       : at.status();
    } else if (!at.ok()) {
      answer = at.status();
      failure_ = answer;
      last_failure_ = answer;
      ++failure_epoch_;
    }
    pipeline_.pop_front();
    if (failure_) {
      failed = *failure_;
      behind.swap(queue_);
    }
    if (pipeline_.empty()) failure_.reset();  // drained: later commits start afresh
    if (!pipeline_.empty() && pipeline_.front()->release) {
      release = std::exchange(pipeline_.front()->release, std::nullopt);
    }
    next = TakeNextProposer();
  }
  if (on_entry_) on_entry_(store::SyncReport{batches.size(), records, payload, latency, answer.ok()});

  // Only locals from here: once the waiters run, the merger may go as soon as this
  // Commit returns (the entries still in flight hold Commits that have not returned).
  for (const Waiter& w : entry) w.done(Turn{.status = answer});
  for (const Waiter& w : behind) w.done(Turn{.status = failed});
  if (release) (*release)();
  if (next) next->done(Turn{.propose = true});
  co_return answer;
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
