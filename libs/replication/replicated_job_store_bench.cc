// What replication costs a store commit (issue 18): the same 16-job JobBatches committed
// to a plain RocksJobStore (WAL fsync per group commit) and to a ReplicatedJobStore of
// three replicas in this process on 127.0.0.1 (raft fsync on a majority, then the
// leader's unsynced RocksDB write), one disk for all.
//
//   replicated_job_store_bench [--commits=2000] [--jobs=16] [--concurrency=16] [--dir=/tmp]
//                              [--max_entry_commits=1,256] [--max_entries_in_flight=1,4]
//
// For each store: the latency of sequential commits (p50/p99, nearest rank, from the
// Commit call to the task resuming), then the throughput of `concurrency` tasks on one
// loop committing `commits` batches between them. The replicated group is measured once
// per --max_entry_commits value and --max_entries_in_flight value (a fresh group each,
// named replicated/COMMITSxIN_FLIGHT; commits 1: one log entry per commit, no merging;
// in flight 1: one entry at a time). "commits per sync": commits per synced write (plain) or per log entry
// (replicated) in the throughput phase.
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "libs/replication/replicated_job_store.h"
#include "libs/runtime/runtime.h"
#include "libs/store/rocks_job_store.h"
#include "tests/testing/free_port.h"

ABSL_FLAG(int, commits, 2000, "batches to commit, per phase");
ABSL_FLAG(int, jobs, 16, "jobs per batch (each with its event)");
ABSL_FLAG(int, concurrency, 16, "concurrent committers in the throughput phase");
ABSL_FLAG(std::string, dir, "/tmp", "where the stores' temp dirs go");
ABSL_FLAG(std::vector<std::string>, max_entry_commits, std::vector<std::string>({"1", "256"}),
          "CommitMergerOptions::max_entry_commits of each replicated group measured, in turn");
ABSL_FLAG(std::vector<std::string>, max_entries_in_flight, std::vector<std::string>({"4"}),
          "CommitMergerOptions::max_entries_in_flight of each replicated group measured, in turn");

namespace cohort::replication {
namespace {

using ::cohort::testing::FreePort;

std::string TempDir(const char* name) {
  std::string pattern = absl::StrCat(absl::GetFlag(FLAGS_dir), "/", name, ".XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return pattern;
}

// Batch n: `jobs` new queued jobs of 256-byte payloads, each with its event.
store::JobBatch Batch(int n) {
  store::JobBatch batch;
  const int jobs = absl::GetFlag(FLAGS_jobs);
  for (int k = 0; k < jobs; ++k) {
    cohort::v1::Job job;
    job.set_id(absl::StrCat("bench-", n, "-", k));
    job.set_state(cohort::v1::JOB_STATE_QUEUED);
    job.mutable_spec()->set_queue("bench");
    job.mutable_spec()->set_payload(std::string(256, 'p'));
    job.set_sequence(static_cast<std::int64_t>(n) * jobs + k + 1);
    batch.PutJob(job, nullptr);
    cohort::v1::JobEvent event;
    event.set_sequence(job.sequence());
    event.set_job_id(job.id());
    batch.AppendEvent(event);
  }
  return batch;
}

double NearestRank(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  std::size_t rank = static_cast<std::size_t>(std::ceil(p * v.size()));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

runtime::Task<void> Committer(store::JobStore& store, int first, int step, int end) {
  for (int n = first; n < end; n += step) {
    absl::Status s = co_await store.Commit(Batch(n));
    if (!s.ok()) {
      std::fprintf(stderr, "commit: %s\n", s.ToString().c_str());
      std::exit(1);
    }
  }
}

void Measure(const std::string& name, store::JobStore& store, runtime::EventLoop& loop) {
  const int commits = absl::GetFlag(FLAGS_commits);
  std::vector<double> latency_ms;
  for (int n = 0; n < commits; ++n) {
    absl::Time t0 = absl::Now();
    absl::Status s = runtime::RunUntilComplete(loop, store.Commit(Batch(n)));
    if (!s.ok()) {
      std::fprintf(stderr, "%s commit: %s\n", name.c_str(), s.ToString().c_str());
      std::exit(1);
    }
    latency_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const store::JobStoreStats before = store.stats();
  absl::Time began = absl::Now();
  std::vector<runtime::TaskHandle<void>> tasks;
  for (int c = 0; c < concurrency; ++c) {
    tasks.push_back(runtime::Spawn(loop, Committer(store, commits + c, concurrency, 2 * commits)));
  }
  loop.RunUntil([&] {
    return std::all_of(tasks.begin(), tasks.end(), [](auto& t) { return t.Done(); });
  });
  double seconds = absl::ToDoubleSeconds(absl::Now() - began);
  const store::JobStoreStats after = store.stats();
  std::printf(
      "%-14s sequential %d x %d jobs: p50 %.3f ms  p99 %.3f ms | %d concurrent: %.0f commits/s (%.0f jobs/s), "
      "%.1f commits per sync\n",
      name.c_str(), commits, absl::GetFlag(FLAGS_jobs), NearestRank(latency_ms, 0.5), NearestRank(latency_ms, 0.99),
      concurrency, commits / seconds, commits * absl::GetFlag(FLAGS_jobs) / seconds,
      static_cast<double>(after.commits - before.commits) / std::max<std::uint64_t>(1, after.syncs - before.syncs));
}

// A fresh group of three replicas merging up to `max_entry_commits` commits per entry,
// with up to `in_flight` entries in flight.
int MeasureGroup(std::size_t max_entry_commits, std::size_t in_flight, runtime::EventLoop& loop) {
  constexpr int kMembers = 3;
  std::vector<Member> members;
  for (int i = 0; i < kMembers; ++i) {
    members.push_back(Member{static_cast<std::uint64_t>(i + 1), absl::StrCat("127.0.0.1:", FreePort())});
  }
  std::vector<std::unique_ptr<ReplicatedJobStore>> replicas;
  for (int i = 0; i < kMembers; ++i) {
    ReplicatedJobStoreOptions options;
    options.local.path = TempDir("replica_store");
    options.raft.self = members[i];
    options.raft.members = members;
    options.raft.dir = TempDir("replica_raft");
    options.merge.max_entry_commits = max_entry_commits;
    options.merge.max_entries_in_flight = in_flight;
    absl::StatusOr<std::unique_ptr<ReplicatedJobStore>> replica = ReplicatedJobStore::Open(std::move(options));
    if (!replica.ok()) {
      std::fprintf(stderr, "open replica: %s\n", replica.status().ToString().c_str());
      return 1;
    }
    replicas.push_back(*std::move(replica));
  }
  // Polls for a leader (a bench, not a test), then settles it with a barrier.
  int leader = -1;
  for (absl::Time deadline = absl::Now() + absl::Seconds(30); leader < 0 && absl::Now() < deadline;) {
    for (int i = 0; i < kMembers; ++i) {
      if (replicas[i]->status().role == Role::kLeader) leader = i;
    }
    if (leader < 0) absl::SleepFor(absl::Milliseconds(1));
  }
  if (leader < 0 || !runtime::RunUntilComplete(loop, replicas[leader]->Barrier()).ok()) {
    std::fprintf(stderr, "no leader within 30 s\n");
    return 1;
  }
  Measure(absl::StrCat("replicated/", max_entry_commits, "x", in_flight), *replicas[leader], loop);
  for (auto& r : replicas) r->Stop();
  return 0;
}

int Main() {
  runtime::EventLoop loop;
  {
    absl::StatusOr<std::unique_ptr<store::RocksJobStore>> plain =
        store::RocksJobStore::Open(store::RocksJobStoreOptions{.path = TempDir("plain_store")});
    if (!plain.ok()) {
      std::fprintf(stderr, "open: %s\n", plain.status().ToString().c_str());
      return 1;
    }
    Measure("plain", **plain, loop);
  }

  for (const std::string& commits : absl::GetFlag(FLAGS_max_entry_commits)) {
    for (const std::string& in_flight : absl::GetFlag(FLAGS_max_entries_in_flight)) {
      std::size_t max_entry_commits = 0, max_in_flight = 0;
      if (!absl::SimpleAtoi(commits, &max_entry_commits) || max_entry_commits == 0 ||
          !absl::SimpleAtoi(in_flight, &max_in_flight) || max_in_flight == 0) {
        std::fprintf(stderr, "--max_entry_commits \"%s\", --max_entries_in_flight \"%s\": use positive integers\n",
                     commits.c_str(), in_flight.c_str());
        return 1;
      }
      if (int rc = MeasureGroup(max_entry_commits, max_in_flight, loop); rc != 0) return rc;
    }
  }
  return 0;
}

}  // namespace
}  // namespace cohort::replication

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cohort::replication::Main();
}
