// RocksJobStore behaviour beyond the conformance suite: several loops, sync reports.

#include <stdlib.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/store/recover_all.h"
#include "libs/store/rocks_job_store.h"

// Under TSan (test.sh): Debian's librocksdb and its compression libraries are not
// instrumented, so TSan cannot see how RocksDB synchronises its own threads (its
// memtable is a lock-free skiplist published with atomics; its block reads decompress
// into buffers shared through its cache), and the memcpy/memcmp they call, which TSan
// intercepts, look like races as soon as a read runs beside a write. Ignore races
// inside RocksDB only: this store's own state (caches, counters, its write mutex)
// stays checked.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:librocksdb.so\n"
         "called_from_lib:libsnappy.so\n"
         "called_from_lib:liblz4.so\n"
         "called_from_lib:libzstd.so\n"
         "called_from_lib:libz.so\n"
         "called_from_lib:libbz2.so\n"
         "race:rocksdb::\n"
         "race:snappy::\n";
}

namespace cohort::store {
namespace {

using runtime::EventLoop;
using runtime::Task;

std::string TempDir() {
  std::string tmpl = absl::StrCat(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp", "/store-XXXXXX");
  EXPECT_NE(mkdtemp(tmpl.data()), nullptr);
  return tmpl;
}

// Commits `count` one-job batches from concurrent tasks; returns how many resumed on
// the wrong thread or failed.
Task<int> CommitMany(JobStore& store, EventLoop& loop, std::string prefix, int count) {
  std::vector<Task<absl::Status>> commits;
  for (int i = 0; i < count; ++i) {
    cohort::v1::Job job;
    job.set_id(absl::StrCat(prefix, i));
    job.set_state(cohort::v1::JOB_STATE_RUNNING);
    JobBatch batch;
    batch.PutJob(job, nullptr);
    commits.push_back(store.Commit(std::move(batch)));
  }
  std::vector<runtime::TaskHandle<absl::Status>> handles;
  for (Task<absl::Status>& t : commits) handles.push_back(runtime::Spawn(std::move(t)));
  int bad = 0;
  for (runtime::TaskHandle<absl::Status>& h : handles) {
    absl::Status s = co_await h;
    if (!s.ok() || !loop.InLoopThread() || EventLoop::Current() != &loop) ++bad;
  }
  co_return bad;
}

TEST(RocksJobStore, CommitsFromTwoLoopsResumeEachOnItsOwnLoop) {
  std::atomic<std::uint64_t> reported_commits{0};
  absl::StatusOr<std::unique_ptr<RocksJobStore>> store = RocksJobStore::Open(RocksJobStoreOptions{
      .path = TempDir(),
      .on_sync = [&](const SyncReport& r) { reported_commits.fetch_add(r.commits, std::memory_order_relaxed); },
  });
  ASSERT_TRUE(store.ok()) << store.status();

  int bad[2] = {-1, -1};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      EventLoop loop;
      bad[t] = runtime::RunUntilComplete(loop, CommitMany(**store, loop, absl::StrCat("t", t, "-"), 200));
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(bad[0], 0);
  EXPECT_EQ(bad[1], 0);

  JobStoreStats stats = (*store)->stats();
  EXPECT_EQ(stats.commits, 400u);
  EXPECT_EQ(reported_commits.load(), 400u);
  EXPECT_LT(stats.syncs, stats.commits);
  EXPECT_EQ(stats.failed_syncs, 0u);
}

TEST(RocksJobStore, OpeningADirectoryThatIsAFileFailsWithAStatus) {
  std::string file = absl::StrCat(TempDir(), "/not-a-dir");
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  absl::StatusOr<std::unique_ptr<RocksJobStore>> store = RocksJobStore::Open(RocksJobStoreOptions{.path = file});
  EXPECT_FALSE(store.status().ok());
  EXPECT_NE(store.status().code(), absl::StatusCode::kUnknown) << store.status();
  EXPECT_NE(store.status().message().find("not-a-dir"), absl::string_view::npos) << store.status();
}

std::unique_ptr<RocksJobStore> OpenStore(const std::string& path) {
  absl::StatusOr<std::unique_ptr<RocksJobStore>> store = RocksJobStore::Open(RocksJobStoreOptions{.path = path});
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

// ---- Inline commits ----------------------------------------------------------------------

// A batch putting job `id` at version `version` (its sequence), queued in "q".
JobBatch VersionOf(const std::string& id, int version) {
  cohort::v1::Job job;
  job.set_id(id);
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.mutable_spec()->set_queue("q");
  job.set_sequence(version);
  JobBatch batch;
  batch.PutJob(job, nullptr);
  return batch;
}

TEST(RocksJobStore, ACommitOnAnIdleLoopIsWrittenInlineAndIsDurable) {
  const std::string dir = TempDir();
  for (bool inline_commits : {true, false}) {
    SCOPED_TRACE(inline_commits ? "inline commits" : "writer thread only");
    absl::StatusOr<std::unique_ptr<RocksJobStore>> store =
        RocksJobStore::Open(RocksJobStoreOptions{.path = dir, .inline_commits = inline_commits});
    ASSERT_TRUE(store.ok()) << store.status();
    EventLoop loop;
    std::thread::id resumed_on;
    absl::Status status = runtime::RunUntilComplete(loop, [&]() -> Task<absl::Status> {
      absl::Status s = co_await (*store)->Commit(VersionOf("one", inline_commits ? 1 : 2));
      resumed_on = std::this_thread::get_id();
      co_return s;
    }());
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(resumed_on, std::this_thread::get_id());
    JobStoreStats stats = (*store)->stats();
    EXPECT_EQ(stats.commits, 1u);
    EXPECT_EQ(stats.syncs, 1u);
    EXPECT_EQ(stats.inline_commits, inline_commits ? 1u : 0u);
    store->reset();

    // Acknowledged means synced: a reopened store has it.
    std::unique_ptr<RocksJobStore> reopened = OpenStore(dir);
    absl::StatusOr<cohort::v1::Job> job = runtime::RunUntilComplete(loop, reopened->GetJob("one"));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->sequence(), inline_commits ? 1 : 2);
  }
}

// One loop's commits, alternately one at a time (each written inline) and in bursts of
// concurrent tasks (merged by the writer), every commit a new version of one job.
// Returns the versions in the order their commits resumed.
Task<std::vector<int>> MixedCommits(JobStore& store, std::string id, int rounds) {
  std::vector<int> resumed;
  int version = 0;
  for (int round = 0; round < rounds; ++round) {
    if (round % 2 == 0) {
      for (int i = 0; i < 5; ++i) {
        const int v = ++version;
        absl::Status s = co_await store.Commit(VersionOf(id, v));
        EXPECT_TRUE(s.ok()) << s;
        resumed.push_back(v);
      }
      continue;
    }
    std::vector<runtime::TaskHandle<void>> burst;
    for (int i = 0; i < 20; ++i) {
      burst.push_back(runtime::Spawn([](JobStore& store, std::string id, int v,
                                        std::vector<int>& resumed) -> Task<void> {
        absl::Status s = co_await store.Commit(VersionOf(id, v));
        EXPECT_TRUE(s.ok()) << s;
        resumed.push_back(v);
      }(store, id, ++version, resumed)));
    }
    for (runtime::TaskHandle<void>& h : burst) co_await h;
  }
  co_return resumed;
}

TEST(RocksJobStore, InlineAndGroupCommitsKeepCommitOrderOnEveryLoop) {
  const std::string dir = TempDir();
  std::unique_ptr<RocksJobStore> store = OpenStore(dir);
  ASSERT_NE(store, nullptr);
  constexpr int kRounds = 20;  // 10 x 5 one at a time, 10 x 20 in bursts, per loop
  constexpr int kVersions = 10 * 5 + 10 * 20;
  std::vector<int> resumed[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      EventLoop loop;
      resumed[t] = runtime::RunUntilComplete(loop, MixedCommits(*store, absl::StrCat("job-", t), kRounds));
    });
  }
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < 2; ++t) {
    std::vector<int> in_order(kVersions);
    for (int v = 0; v < kVersions; ++v) in_order[v] = v + 1;
    EXPECT_EQ(resumed[t], in_order) << "loop " << t << ": commits resumed out of order";
  }
  JobStoreStats stats = store->stats();
  EXPECT_EQ(stats.commits, 2u * kVersions);
  EXPECT_GT(stats.inline_commits, 0u);
  EXPECT_LT(stats.syncs, stats.commits) << "the bursts shared synced writes";
  EXPECT_EQ(stats.failed_syncs, 0u);
  store.reset();

  // Written in commit order: the last version of each job is the one stored.
  std::unique_ptr<RocksJobStore> reopened = OpenStore(dir);
  EventLoop loop;
  for (int t = 0; t < 2; ++t) {
    absl::StatusOr<cohort::v1::Job> job = runtime::RunUntilComplete(loop, reopened->GetJob(absl::StrCat("job-", t)));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->sequence(), kVersions);
  }
}


// ---- Replicated mode -------------------------------------------------------------------

// A batch touching every family: job n (queued, so with a ready entry), its event, a
// meta value and a bulk record.
JobBatch BatchOf(int n) {
  cohort::v1::Job job;
  job.set_id(absl::StrCat("job-", n));
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.mutable_spec()->set_queue("q");
  job.set_sequence(n);
  cohort::v1::JobEvent event;
  event.set_sequence(n);
  event.set_job_id(job.id());
  cohort::v1::BulkOperation op;
  op.set_id(absl::StrCat("op-", n));
  JobBatch batch;
  batch.PutJob(job, nullptr);
  batch.AppendEvent(event);
  batch.PutMeta("cursor", absl::StrCat(n));
  batch.PutBulkOperation(op);
  EXPECT_TRUE(batch.status().ok()) << batch.status();
  return batch;
}

// `batch` as a replicated log carries it: views into `batch`, which must outlive it.
ReplicatedBatch Replicated(const JobBatch& batch) {
  ReplicatedBatch replicated{{}, batch.max_event_sequence(), batch.trim_events_before()};
  for (const JobBatch::Record& r : batch.record_list()) replicated.records.push_back({r.family, r.erase, r.key, r.value});
  return replicated;
}

TEST(RocksJobStoreReplicated, ApplyWritesTheBatchWithItsIndexAndSkipsReplays) {
  std::string path = TempDir();
  {
    std::unique_ptr<RocksJobStore> store = OpenStore(path);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->applied_index(), 0u);
    ASSERT_TRUE(store->ApplyReplicated(Replicated(BatchOf(1)), 5).ok());
    ASSERT_TRUE(store->ApplyReplicated(Replicated(BatchOf(2)), 7).ok());
    EXPECT_EQ(store->applied_index(), 7u);
  }
  std::unique_ptr<RocksJobStore> store = OpenStore(path);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->applied_index(), 7u) << "the applied index is durable with the data";
  // A replay of index 6 (at or below 7) changes nothing, even with other content.
  ASSERT_TRUE(store->ApplyReplicated(Replicated(BatchOf(3)), 6).ok());
  EXPECT_EQ(store->applied_index(), 7u);
  runtime::EventLoop loop;
  absl::StatusOr<RecoveredStore> state = runtime::RunUntilComplete(loop, RecoverAll(*store));
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->jobs.size(), 2u);
  EXPECT_EQ(state->jobs[0].id(), "job-1");
  EXPECT_EQ(state->jobs[1].id(), "job-2");
  EXPECT_EQ(state->ready.size(), 2u);
  EXPECT_EQ(state->last_event_sequence, 2);
  EXPECT_EQ(state->meta["cursor"], "2");
  EXPECT_EQ(state->bulk_operations.size(), 2u);
  // A trim replicated later keeps the newest event, as Commit's does.
  ReplicatedBatch trim;
  trim.trim_events_before = 100;
  ASSERT_TRUE(store->ApplyReplicated(trim, 8).ok());
  absl::StatusOr<std::vector<cohort::v1::JobEvent>> events =
      runtime::RunUntilComplete(loop, store->ReadEvents(0, 10, 1 << 20));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].sequence(), 2);
}

TEST(RocksJobStoreReplicated, ImportReplacesEveryFamilyWithAnotherStoresExport) {
  std::unique_ptr<RocksJobStore> source = OpenStore(TempDir());
  std::unique_ptr<RocksJobStore> target = OpenStore(TempDir());
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  for (int n = 1; n <= 20; ++n) ASSERT_TRUE(source->ApplyReplicated(Replicated(BatchOf(n)), n).ok());
  // The target holds state the export does not: it must be gone afterwards.
  ASSERT_TRUE(target->ApplyReplicated(Replicated(BatchOf(99)), 3).ok());
  absl::StatusOr<std::string> exported = source->Export();
  ASSERT_TRUE(exported.ok()) << exported.status();

  ASSERT_TRUE(target->Import(*exported, 12).ok());
  EXPECT_EQ(target->applied_index(), 20u) << "the exported index is higher than at_least_index";
  absl::StatusOr<std::string> reexported = target->Export();
  ASSERT_TRUE(reexported.ok()) << reexported.status();
  EXPECT_EQ(*reexported, *exported) << "every family, applied index included, is identical";
  ASSERT_TRUE(target->Import(*exported, 25).ok());
  EXPECT_EQ(target->applied_index(), 25u);
  // The imported event log is where the next trim starts from.
  ReplicatedBatch trim;
  trim.trim_events_before = 1000;
  ASSERT_TRUE(target->ApplyReplicated(trim, 26).ok());
  runtime::EventLoop loop;
  absl::StatusOr<std::vector<cohort::v1::JobEvent>> events =
      runtime::RunUntilComplete(loop, target->ReadEvents(0, 100, 1 << 20));
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].sequence(), 20);
}

TEST(RocksJobStoreReplicated, AMalformedExportIsRefusedAndChangesNothing) {
  std::unique_ptr<RocksJobStore> source = OpenStore(TempDir());
  std::unique_ptr<RocksJobStore> target = OpenStore(TempDir());
  ASSERT_NE(source, nullptr);
  ASSERT_NE(target, nullptr);
  for (int n = 1; n <= 3; ++n) ASSERT_TRUE(source->ApplyReplicated(Replicated(BatchOf(n)), n).ok());
  ASSERT_TRUE(target->ApplyReplicated(Replicated(BatchOf(7)), 7).ok());
  absl::StatusOr<std::string> before = target->Export();
  absl::StatusOr<std::string> exported = source->Export();
  ASSERT_TRUE(before.ok() && exported.ok());

  std::vector<std::string> bad;
  for (std::size_t n = 0; n < exported->size(); n += 7) bad.push_back(exported->substr(0, n));  // truncations
  bad.push_back(*exported + "x");
  std::string version = *exported;
  version[0] = 9;
  bad.push_back(version);
  std::string family = *exported;
  family[9] = 42;  // the first record's family
  bad.push_back(family);
  for (const std::string& b : bad) {
    absl::Status s = target->Import(b, 100);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << absl::StrFormat("%d bytes: %s", b.size(), s.ToString());
  }
  EXPECT_EQ(target->applied_index(), 7u);
  absl::StatusOr<std::string> after = target->Export();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);
}

// The replicated writes run on the log's thread while the broker's loop commits and
// reads (TSan-tested by test.sh): every write lands and the event sequence that trims
// resume from is the highest of both paths.
TEST(RocksJobStoreReplicated, ApplyIsSafeAlongsideCommitsAndReadsOnOtherThreads) {
  std::unique_ptr<RocksJobStore> store = OpenStore(TempDir());
  ASSERT_NE(store, nullptr);
  std::atomic<bool> applied_all{false};
  std::thread log_thread([&] {
    for (int n = 1; n <= 200; ++n) {
      absl::Status s = store->ApplyReplicated(Replicated(BatchOf(n)), n);
      EXPECT_TRUE(s.ok()) << s;
    }
    applied_all = true;
  });
  EventLoop loop;
  auto reads_and_commits = [&]() -> Task<int> {
    int bad = co_await CommitMany(*store, loop, "local-", 200);
    while (!applied_all.load()) {
      absl::StatusOr<RecoveredStore> state = co_await RecoverAll(*store);
      absl::StatusOr<std::vector<cohort::v1::JobEvent>> events = co_await store->ReadEvents(0, 50, 1 << 20);
      absl::StatusOr<cohort::v1::Job> job = co_await store->GetJob("job-1");
      if (!state.ok() || !events.ok() || (!job.ok() && job.status().code() != absl::StatusCode::kNotFound)) ++bad;
    }
    co_return bad;
  };
  EXPECT_EQ(runtime::RunUntilComplete(loop, reads_and_commits()), 0);
  log_thread.join();
  EXPECT_EQ(store->applied_index(), 200u);
  absl::StatusOr<RecoveredStore> state = runtime::RunUntilComplete(loop, RecoverAll(*store));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->jobs.size(), 400u);
  EXPECT_EQ(state->last_event_sequence, 200);
}

}  // namespace
}  // namespace cohort::store
