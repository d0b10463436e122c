// CommitMerger over a log the test controls: commits that arrive while entries are in
// flight share the next entry in arrival order; several entries are in flight at once
// and answered in log order; an entry's failure fails its commits, every later entry
// and everything queued behind it, and nothing is proposed until they are answered;
// entries stay within their byte and commit limits; committers on several loops at
// once are all answered, each only after its entry was applied, and each loop's
// commits reach the log in the order they were called.
#include "libs/replication/commit_merger.h"

#include <atomic>
#include <condition_variable>
#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/replication/job_batch_codec.h"
#include "libs/runtime/runtime.h"

namespace cohort::replication {
namespace {

using store::JobBatch;
using Done = runtime::Completer<absl::StatusOr<LogPosition>>;

// A ReplicatedLog whose proposals wait until the test completes them.
class HeldLog final : public ReplicatedLog {
 public:
  struct Held {
    std::string entry;
    Done done;
  };

  runtime::Task<absl::StatusOr<LogPosition>> Propose(std::string entry) override {
    co_return co_await runtime::ExternalCompletion<absl::StatusOr<LogPosition>>(
        [this, &entry](Done done) { held_.push_back(Held{std::move(entry), done}); });
  }
  LogStatus status() const override { return LogStatus{.role = Role::kLeader}; }

  std::size_t held() const { return held_.size(); }
  // The meta values of the oldest held entry, in entry order.
  std::vector<std::string> OldestValues() const {
    absl::StatusOr<DecodedEntry> decoded = DecodeEntry(held_.front().entry);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    std::vector<std::string> values;
    if (decoded.ok()) {
      for (const store::ReplicatedRecord& r : decoded->batch.records) values.emplace_back(r.value);
    }
    return values;
  }
  std::size_t OldestSize() const { return held_.front().entry.size(); }
  // The meta values of the held entry at `i` (0: the oldest).
  std::vector<std::string> ValuesAt(std::size_t i) const {
    absl::StatusOr<DecodedEntry> decoded = DecodeEntry(held_.at(i).entry);
    EXPECT_TRUE(decoded.ok()) << decoded.status();
    std::vector<std::string> values;
    if (decoded.ok()) {
      for (const store::ReplicatedRecord& r : decoded->batch.records) values.emplace_back(r.value);
    }
    return values;
  }
  // Completes the oldest held proposal.
  void Complete(absl::StatusOr<LogPosition> outcome) { CompleteAt(0, std::move(outcome)); }
  // Completes the held proposal at `i` (0: the oldest), as a log whose callbacks
  // arrive out of order would.
  void CompleteAt(std::size_t i, absl::StatusOr<LogPosition> outcome) {
    Held h = std::move(held_.at(i));
    held_.erase(held_.begin() + static_cast<std::ptrdiff_t>(i));
    ++completed_;
    h.done(std::move(outcome));
  }
  // Proposals made so far (held or completed).
  std::size_t proposed() const { return held_.size() + completed_; }

 private:
  std::deque<Held> held_;
  std::size_t completed_ = 0;
};

// Batch i: one meta record "k" = "<i>", padded to `pad` bytes of value.
JobBatch MetaBatch(int i, std::size_t pad = 0) {
  JobBatch batch;
  std::string value = absl::StrCat(i);
  if (value.size() < pad) value.resize(pad, ' ');
  batch.PutMeta("k", value);
  return batch;
}

std::vector<std::string> Values(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(absl::StrCat(i));
  return out;
}

class CommitMergerTest : public ::testing::Test {
 protected:
  // Spawns committers first..last-1 on loop_ (they start in that order).
  void Spawn(int first, int last, CommitMerger& merger, std::size_t pad = 0) {
    for (int i = first; i < last; ++i) {
      (void)runtime::Spawn(loop_, [](CommitMerger& m, int n, std::size_t p, CommitMergerTest* t) -> runtime::Task<void> {
        absl::Status s = co_await m.Commit(MetaBatch(n, p));
        t->answers_.push_back({n, s});
      }(merger, i, pad, this));  // runs to completion without its handle
    }
  }

  runtime::EventLoop loop_;
  HeldLog log_;
  std::vector<std::pair<int, absl::Status>> answers_;  // in the order committers resumed
};

// One entry at a time (max_entries_in_flight 1, the default), said explicitly.
constexpr CommitMergerOptions kOneInFlight{.max_entries_in_flight = 1};

TEST_F(CommitMergerTest, CommitsThatArriveWhileAnEntryIsInFlightShareTheNextEntryInArrivalOrder) {
  CommitMerger merger(&log_, kOneInFlight);
  Spawn(0, 50, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);  // the first commit found nothing in flight: alone
  EXPECT_EQ(log_.OldestValues(), Values(0, 1));
  log_.Complete(LogPosition{1, 1});
  loop_.RunUntilIdle();
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(answers_[0].first, 0);
  EXPECT_TRUE(answers_[0].second.ok()) << answers_[0].second;

  ASSERT_EQ(log_.held(), 1u);  // the 49 that queued meanwhile: one entry, in order
  EXPECT_EQ(log_.OldestValues(), Values(1, 50));
  log_.Complete(LogPosition{2, 1});
  loop_.RunUntilIdle();
  EXPECT_EQ(log_.held(), 0u);
  ASSERT_EQ(answers_.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(answers_[i].first, i);
    EXPECT_TRUE(answers_[i].second.ok()) << answers_[i].second;
  }
  CommitMergerStats stats = merger.stats();
  EXPECT_EQ(stats.commits, 50u);
  EXPECT_EQ(stats.entries, 2u);
  EXPECT_EQ(stats.failed_entries, 0u);
  EXPECT_EQ(stats.largest_entry_commits, 49u);
}

TEST_F(CommitMergerTest, AFailedEntryFailsItsCommitsAndEveryCommitQueuedBehindItWithItsStatus) {
  std::vector<store::SyncReport> reports;
  CommitMerger merger(&log_, kOneInFlight, [&](const store::SyncReport& r) { reports.push_back(r); });
  Spawn(0, 10, merger);
  loop_.RunUntilIdle();
  log_.Complete(LogPosition{1, 1});  // commit 0
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);
  EXPECT_EQ(log_.OldestValues(), Values(1, 10));
  Spawn(10, 15, merger);  // queue behind the entry in flight
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);

  const absl::Status lost = absl::AbortedError("leadership was lost before the entry committed; it may still commit");
  log_.Complete(lost);
  loop_.RunUntilIdle();
  EXPECT_EQ(log_.held(), 0u) << "nothing queued behind a failed entry may be proposed after it";
  ASSERT_EQ(answers_.size(), 15u);
  EXPECT_TRUE(answers_[0].second.ok());
  for (int i = 1; i < 15; ++i) {
    EXPECT_EQ(answers_[i].first, i);
    EXPECT_EQ(answers_[i].second, lost) << i;
  }
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_TRUE(reports[0].ok);
  EXPECT_EQ(reports[1].commits, 9u);
  EXPECT_FALSE(reports[1].ok);
  EXPECT_EQ(merger.stats().failed_entries, 1u);

  // The merger is not stuck: the next commit proposes an entry of its own.
  Spawn(15, 16, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);
  EXPECT_EQ(log_.OldestValues(), Values(15, 16));
  log_.Complete(LogPosition{3, 2});
  loop_.RunUntilIdle();
  ASSERT_EQ(answers_.size(), 16u);
  EXPECT_TRUE(answers_[15].second.ok()) << answers_[15].second;
}

TEST_F(CommitMergerTest, WhenTheLeaderMovedEveryWaitingCommitIsUnavailableNamingTheLeader) {
  CommitMerger merger(&log_, kOneInFlight);
  Spawn(0, 6, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);
  log_.Complete(NotLeaderError(Member{2, "127.0.0.1:7002"}));
  loop_.RunUntilIdle();
  EXPECT_EQ(log_.held(), 0u);
  ASSERT_EQ(answers_.size(), 6u);
  for (const auto& [n, status] : answers_) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << n;
    std::optional<Member> hint = LeaderHint(status);
    ASSERT_TRUE(hint.has_value()) << n;
    EXPECT_EQ(hint->address, "127.0.0.1:7002");
  }
}

TEST_F(CommitMergerTest, SeveralEntriesAreInFlightAtOnceAndAnsweredInLogOrder) {
  CommitMerger merger(&log_, {.max_entries_in_flight = 3});
  Spawn(0, 10, merger);
  loop_.RunUntilIdle();
  // The first three found room in flight; the others queued behind them.
  ASSERT_EQ(log_.held(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(log_.ValuesAt(i), Values(i, i + 1));
  log_.Complete(LogPosition{1, 1});
  loop_.RunUntilIdle();
  ASSERT_EQ(answers_.size(), 1u);
  ASSERT_EQ(log_.held(), 3u);  // the seven queued went out together as the next entry
  EXPECT_EQ(log_.ValuesAt(2), Values(3, 10));
  for (std::uint64_t index = 2; log_.held() > 0; ++index) {
    log_.Complete(LogPosition{index, 1});
    loop_.RunUntilIdle();
  }
  ASSERT_EQ(answers_.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(answers_[i].first, i);
    EXPECT_TRUE(answers_[i].second.ok()) << answers_[i].second;
  }
  EXPECT_EQ(merger.stats().entries, 4u);
}

TEST_F(CommitMergerTest, ALaterEntryThatCompletesFirstIsAnsweredOnlyAfterTheEarlierOnes) {
  CommitMerger merger(&log_, {.max_entries_in_flight = 3});
  Spawn(0, 3, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 3u);
  log_.CompleteAt(2, LogPosition{3, 1});
  loop_.RunUntilIdle();
  log_.CompleteAt(1, LogPosition{2, 1});
  loop_.RunUntilIdle();
  EXPECT_TRUE(answers_.empty()) << "an entry was answered before an earlier one";
  log_.Complete(LogPosition{1, 1});
  loop_.RunUntilIdle();
  ASSERT_EQ(answers_.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(answers_[i].first, i);
    EXPECT_TRUE(answers_[i].second.ok()) << answers_[i].second;
  }
}

TEST_F(CommitMergerTest, AFailedEntryFailsEveryLaterEntryAndNothingIsProposedUntilTheyAreAnswered) {
  CommitMerger merger(&log_, {.max_entries_in_flight = 3});
  Spawn(0, 6, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 3u);  // {0} {1} {2}, and 3..5 queued
  log_.Complete(LogPosition{1, 1});
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 3u);  // {1} {2} {3,4,5}
  EXPECT_EQ(log_.ValuesAt(2), Values(3, 6));
  Spawn(6, 9, merger);  // queued: three entries are in flight
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.proposed(), 4u);

  const absl::Status lost = absl::AbortedError("leadership was lost before the entry committed; it may still commit");
  log_.Complete(lost);  // entry {1}
  loop_.RunUntilIdle();
  Spawn(9, 10, merger);  // arrives while the entries behind the failed one are in flight
  loop_.RunUntilIdle();
  EXPECT_EQ(log_.proposed(), 4u) << "something was proposed after an entry failed";
  log_.Complete(LogPosition{3, 1});  // entry {2} committed, after the failed one
  loop_.RunUntilIdle();
  log_.Complete(NotLeaderError(Member{2, "127.0.0.1:7002"}));  // entry {3,4,5}
  loop_.RunUntilIdle();
  EXPECT_EQ(log_.proposed(), 4u);

  std::map<int, absl::Status> by_commit(answers_.begin(), answers_.end());
  ASSERT_EQ(by_commit.size(), 10u);
  EXPECT_TRUE(by_commit[0].ok());
  EXPECT_EQ(by_commit[1], lost);
  EXPECT_EQ(by_commit[2].code(), absl::StatusCode::kAborted) << by_commit[2];
  for (int i = 3; i < 6; ++i) EXPECT_EQ(by_commit[i].code(), absl::StatusCode::kUnavailable) << i;
  for (int i = 6; i < 10; ++i) EXPECT_EQ(by_commit[i], lost) << i;
  // Answered in log order: 0, then 1 with 6..9 (queued behind it, failed with it), 2, 3..5.
  std::vector<int> order;
  for (const auto& [n, status] : answers_) order.push_back(n);
  EXPECT_EQ(order.front(), 0);
  EXPECT_LT(std::find(order.begin(), order.end(), 1), std::find(order.begin(), order.end(), 2));
  EXPECT_LT(std::find(order.begin(), order.end(), 2), std::find(order.begin(), order.end(), 3));

  // Once they are answered, the merger proposes again.
  Spawn(10, 11, merger);
  loop_.RunUntilIdle();
  ASSERT_EQ(log_.held(), 1u);
  EXPECT_EQ(log_.OldestValues(), Values(10, 11));
  log_.Complete(LogPosition{4, 2});
  loop_.RunUntilIdle();
  ASSERT_EQ(answers_.size(), 11u);
  EXPECT_TRUE(answers_.back().second.ok()) << answers_.back().second;
}

// Completes every held entry in turn, returning the commits each one carried.
std::vector<std::size_t> DrainEntries(runtime::EventLoop& loop, HeldLog& log, std::size_t max_bytes) {
  std::vector<std::size_t> sizes;
  loop.RunUntilIdle();
  for (std::uint64_t index = 1; log.held() > 0; ++index) {
    sizes.push_back(log.OldestValues().size());
    if (sizes.size() > 1 && sizes.back() > 1) EXPECT_LE(log.OldestSize(), max_bytes);
    log.Complete(LogPosition{index, 1});
    loop.RunUntilIdle();
  }
  return sizes;
}

TEST_F(CommitMergerTest, EntriesStayWithinTheirCommitLimit) {
  CommitMerger merger(&log_, {.max_entry_commits = 4, .max_entries_in_flight = 1});
  Spawn(0, 16, merger);
  EXPECT_EQ(DrainEntries(loop_, log_, std::size_t{4} << 20), (std::vector<std::size_t>{1, 4, 4, 4, 3}));
  ASSERT_EQ(answers_.size(), 16u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(answers_[i].first, i);
}

TEST_F(CommitMergerTest, EntriesStayWithinTheirByteLimitAndALargerBatchGoesAlone) {
  const std::size_t one = MergedBytes(MetaBatch(0, 100));
  const std::size_t limit = kBatchHeaderBytes + 3 * one;
  CommitMerger merger(&log_, {.max_entry_bytes = limit, .max_entries_in_flight = 1});
  Spawn(0, 8, merger, 100);
  Spawn(8, 9, merger, 1000);  // on its own over the limit
  Spawn(9, 12, merger, 100);
  EXPECT_EQ(DrainEntries(loop_, log_, limit), (std::vector<std::size_t>{1, 3, 3, 1, 1, 3}));
  ASSERT_EQ(answers_.size(), 12u);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(answers_[i].first, i);
    EXPECT_TRUE(answers_[i].second.ok());
  }
}

// A log that applies every proposal on a thread of its own, in order, as RaftLog does.
class ThreadedLog final : public ReplicatedLog {
 public:
  ThreadedLog() : thread_([this] { Run(); }) {}
  ~ThreadedLog() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }

  runtime::Task<absl::StatusOr<LogPosition>> Propose(std::string entry) override {
    co_return co_await runtime::ExternalCompletion<absl::StatusOr<LogPosition>>([this, &entry](Done done) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        inbox_.push_back({std::move(entry), done});
      }
      wake_.notify_one();
    });
  }
  LogStatus status() const override { return LogStatus{.role = Role::kLeader}; }

  // Whether "value" was applied. Any thread.
  bool Applied(const std::string& value) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& v : applied_) {
      if (v == value) return true;
    }
    return false;
  }
  std::vector<std::string> applied() {
    std::lock_guard<std::mutex> lock(mu_);
    return applied_;
  }

 private:
  void Run() {
    std::uint64_t index = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      wake_.wait(lock, [&] { return stop_ || !inbox_.empty(); });
      if (inbox_.empty()) return;
      auto [entry, done] = std::move(inbox_.front());
      inbox_.pop_front();
      absl::StatusOr<DecodedEntry> decoded = DecodeEntry(entry);
      EXPECT_TRUE(decoded.ok()) << decoded.status();
      for (const store::ReplicatedRecord& r : decoded->batch.records) applied_.emplace_back(r.value);
      lock.unlock();
      done(LogPosition{++index, 1});
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::deque<std::pair<std::string, Done>> inbox_;
  std::vector<std::string> applied_;
  std::thread thread_;  // last
};

TEST(CommitMergerThreads, CommittersOnSeveralLoopsAreEachAnsweredAfterTheirEntryAppliedInOrder) {
  constexpr int kLoops = 4, kPerLoop = 16, kRounds = 50, kPerLoopCommits = kPerLoop * kRounds;
  ThreadedLog log;
  CommitMerger merger(&log, {.max_entry_commits = 8, .max_entries_in_flight = 4});
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int l = 0; l < kLoops; ++l) {
    threads.emplace_back([&, l] {
      runtime::EventLoop loop;
      // kPerLoop concurrent committers on this loop, each committing kRounds batches in
      // turn; a batch's value is the order in which this loop called Commit.
      int calls = 0;
      auto committer = [&]() -> runtime::Task<void> {
        for (int r = 0; r < kRounds; ++r) {
          const int n = l * kPerLoopCommits + calls++;
          absl::Status s = co_await merger.Commit(MetaBatch(n));
          if (!s.ok() || !log.Applied(absl::StrCat(n))) failures.fetch_add(1);
        }
      };
      std::vector<runtime::Task<void>> tasks;
      for (int c = 0; c < kPerLoop; ++c) tasks.push_back(committer());
      runtime::RunUntilComplete(loop, runtime::Gather(std::move(tasks)));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0) << "a commit failed or resumed before its entry applied";
  // Each loop's batches were applied in the order that loop called Commit, although
  // several of its commits were in flight at once.
  std::vector<std::string> applied = log.applied();
  ASSERT_EQ(applied.size(), std::size_t{kLoops * kPerLoopCommits});
  std::vector<int> last(kLoops, -1);
  for (const std::string& v : applied) {
    const int n = std::stoi(v);
    EXPECT_GT(n % kPerLoopCommits, last[n / kPerLoopCommits]) << v;
    last[n / kPerLoopCommits] = n % kPerLoopCommits;
  }
  CommitMergerStats stats = merger.stats();
  EXPECT_EQ(stats.commits, std::uint64_t{kLoops * kPerLoopCommits});
  EXPECT_LE(stats.largest_entry_commits, 8u);
  EXPECT_LT(stats.entries, stats.commits) << "concurrent commits never shared an entry";
}

}  // namespace
}  // namespace cohort::replication
