// RocksJobStore behaviour beyond the conformance suite: several loops, sync reports.

#include <stdlib.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/store/rocks_job_store.h"

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

}  // namespace
}  // namespace cohort::store
