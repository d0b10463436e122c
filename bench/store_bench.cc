// Durable commit throughput of RocksJobStore: every Commit is acknowledged only after
// the WAL fsync of the synced write holding it (group commit). Each job is what a
// Submit writes: the job (~200 bytes), its ready-index entry and its event.
//
//   bazel run //bench:store_bench -- [--dir=DIR] [--jobs=N]
//
// Prints figures; asserts nothing.

#include <stdio.h>
#include <stdlib.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/runtime/runtime.h"
#include "libs/store/rocks_job_store.h"

namespace {

using cohort::runtime::Task;
using cohort::store::JobBatch;
using cohort::store::JobStore;

struct Counter {
  std::int64_t next_sequence = 1;
};

cohort::v1::Job MakeJob(std::int64_t n) {
  cohort::v1::Job job;
  job.set_id(absl::StrCat("job-", n));
  job.mutable_spec()->set_queue("bench");
  job.mutable_spec()->set_kind("builtin.noop");
  job.mutable_spec()->set_payload(std::string(150, 'p'));
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.set_sequence(n);
  job.mutable_create_time()->set_seconds(1'700'000'000);
  job.mutable_queue_time()->set_seconds(1'700'000'000);
  return job;
}

// Commits `batches` batches of `batch_size` new jobs, one after another.
Task<void> Committer(JobStore& store, Counter& counter, int batches, int batch_size) {
  for (int b = 0; b < batches; ++b) {
    JobBatch batch;
    for (int i = 0; i < batch_size; ++i) {
      std::int64_t n = counter.next_sequence++;
      cohort::v1::Job job = MakeJob(n);
      cohort::v1::JobEvent event;
      event.set_sequence(n);
      event.set_job_id(job.id());
      event.set_to_state(cohort::v1::JOB_STATE_QUEUED);
      event.set_reason(cohort::v1::TRANSITION_REASON_SUBMITTED);
      batch.PutJob(job, nullptr);
      batch.AppendEvent(event);
    }
    absl::Status s = co_await store.Commit(std::move(batch));
    if (!s.ok()) {
      fprintf(stderr, "commit failed: %s\n", s.ToString().c_str());
      exit(1);
    }
  }
}

void RunCase(const std::string& base, int batch_size, int tasks, std::int64_t jobs) {
  std::string dir = absl::StrCat(base, "/store-bench-", batch_size, "-", tasks);
  std::filesystem::remove_all(dir);
  absl::StatusOr<std::unique_ptr<cohort::store::RocksJobStore>> store =
      cohort::store::RocksJobStore::Open(cohort::store::RocksJobStoreOptions{.path = dir});
  if (!store.ok()) {
    fprintf(stderr, "%s\n", store.status().ToString().c_str());
    exit(1);
  }
  cohort::runtime::EventLoop loop;
  Counter counter;
  int batches_per_task = static_cast<int>(jobs / (std::int64_t{batch_size} * tasks));
  std::vector<Task<void>> committers;
  for (int t = 0; t < tasks; ++t) committers.push_back(Committer(**store, counter, batches_per_task, batch_size));
  absl::Time start = absl::Now();
  cohort::runtime::RunUntilComplete(loop, cohort::runtime::Gather(std::move(committers)));
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);

  cohort::store::JobStoreStats stats = (*store)->stats();
  std::int64_t done = std::int64_t{batches_per_task} * batch_size * tasks;
  printf("batch=%-4d tasks=%-3d %9lld jobs in %6.3f s = %9.0f jobs/s  (%llu syncs, %.1f commits/sync, "
         "%.0f jobs/sync, mean sync %.3f ms)\n",
         batch_size, tasks, static_cast<long long>(done), seconds, done / seconds,
         static_cast<unsigned long long>(stats.syncs), static_cast<double>(stats.commits) / stats.syncs,
         static_cast<double>(done) / stats.syncs, absl::ToDoubleMilliseconds(stats.sync_time) / stats.syncs);
  store->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  std::int64_t jobs = 400'000;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg(argv[i]);
    bool ok = false;
    if (absl::ConsumePrefix(&arg, "--dir=")) {
      dir = std::string(arg);
      ok = !dir.empty();
    } else if (absl::ConsumePrefix(&arg, "--jobs=")) {
      ok = absl::SimpleAtoi(arg, &jobs) && jobs > 0;
    }
    if (!ok) {
      fprintf(stderr, "store_bench: bad flag %s: use --dir=DIR, --jobs=N (N > 0)\n", argv[i]);
      return 2;
    }
  }
  printf("RocksJobStore durable commits (WAL fsync per synced write), ~200-byte jobs + ready entry + event\n");
  for (int batch_size : {16, 256}) {
    for (int tasks : {1, 8, 32}) RunCase(dir, batch_size, tasks, jobs);
  }
  return 0;
}
