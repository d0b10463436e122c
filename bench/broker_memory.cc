// Broker memory per retained finished job (issue 14): a real BrokerEngine on a
// RocksJobStore in a temp dir runs no-op jobs to completion through an in-process
// executor (Assign -> Complete carrying its credit back), and the process's RSS and
// malloc'ed bytes are read with nothing queued before the first job and after each
// checkpoint. Every finished job is retained (result_ttl 7 days, as the default).
//
//   bazel run -c opt //bench:broker_memory -- [--jobs=100000,300000] [--labels=N] [--dir=DIR] [--keep]
//   bazel run -c opt //bench:broker_memory -- --recover --dir=DIR
//
// Prints figures; asserts nothing. "per job" is the growth from the empty broker
// divided by the jobs retained, and the slope between checkpoints (which leaves out
// what is fixed once warm: RocksDB's memtables, the block cache, arenas). --keep leaves
// the database in DIR; --recover then starts a broker on it in a fresh process and
// prints how long the start (recovery) took, its peak RSS and the RSS once started.
// --labels=N gives every job N labels, label<i>=value<job % 100>.

#include <malloc.h>
#include <stdio.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "libs/common/ids.h"
#include "libs/runtime/runtime.h"
#include "libs/store/rocks_job_store.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"
#include "services/broker/broker_metrics.h"

namespace {

using cohort::runtime::Task;
namespace v1 = cohort::v1;

std::int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

std::int64_t HeapBytes() { return static_cast<std::int64_t>(mallinfo2().uordblks); }

// The process's peak RSS so far (VmHWM).
std::int64_t PeakRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    std::int64_t kb = 0;
    if (absl::ConsumePrefix(&rest, "VmHWM:") && absl::SimpleAtoi(absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kb)) {
      return kb * 1024;
    }
  }
  return 0;
}

// The executor side: keeps the assignments the engine sends, for the driver to finish.
class Executor final : public cohort::broker::ExecutorChannel {
 public:
  void Send(v1::BrokerMessage m) override {
    if (m.has_assign()) assigned.emplace_back(m.assign().job().id(), m.assign().attempt());
    if (!assigned.empty()) wake.Set();
  }
  void End(absl::Status) override {}
  std::vector<std::pair<std::string, int>> assigned;
  cohort::runtime::Event wake;
};

struct Checkpoint {
  std::int64_t jobs;
  std::int64_t rss;
  std::int64_t heap;
  double seconds;
};

constexpr int kSubmitBatch = 1'000;
constexpr int kCapacity = 256;

// Submits and finishes `jobs` more no-op jobs; returns once every one has SUCCEEDED.
Task<void> RunJobs(cohort::broker::BrokerEngine& engine, Executor& exec, std::uint64_t session, std::int64_t jobs,
                   int labels) {
  std::int64_t submitted = 0, finished = 0;
  while (finished < jobs) {
    // Keep a few batches queued ahead of the executor.
    while (submitted < jobs && submitted - finished < 4 * kSubmitBatch) {
      std::vector<v1::JobSpec> specs;
      const std::int64_t n = std::min<std::int64_t>(kSubmitBatch, jobs - submitted);
      for (std::int64_t i = 0; i < n; ++i) {
        v1::JobSpec spec;
        spec.set_queue("bench");
        spec.set_kind("builtin.noop");
        spec.set_payload("{}");
        for (int l = 0; l < labels; ++l) {
          (*spec.mutable_labels())[absl::StrCat("label", l)] = absl::StrCat("value", (submitted + i) % 100);
        }
        specs.push_back(std::move(spec));
      }
      absl::StatusOr<std::vector<std::string>> ids = co_await engine.Submit(std::move(specs), false);
      if (!ids.ok()) {
        fprintf(stderr, "submit failed: %s\n", ids.status().ToString().c_str());
        std::abort();
      }
      submitted += n;
    }
    if (exec.assigned.empty()) {
      exec.wake.Clear();
      co_await exec.wake.Wait();
    }
    std::vector<std::pair<std::string, int>> batch = std::move(exec.assigned);
    exec.assigned.clear();
    for (const auto& [id, attempt] : batch) {
      v1::ExecutorMessage m;
      m.mutable_complete()->set_job_id(id);
      m.mutable_complete()->set_attempt(attempt);
      m.mutable_complete()->set_result("ok");
      m.mutable_complete()->set_credit(1);
      if (absl::Status s = engine.OnExecutorMessage(session, m); !s.ok()) {
        fprintf(stderr, "complete failed: %s\n", s.ToString().c_str());
        std::abort();
      }
      ++finished;
    }
  }
  // Let the last completions commit.
  for (int i = 0; i < 1000 && engine.committed_sequence() == 0; ++i) co_await cohort::runtime::Yield();
}

}  // namespace

int main(int argc, char** argv) {
  const absl::Time process_start = absl::Now();
  std::vector<std::int64_t> checkpoints = {100'000, 300'000};
  std::string dir;
  bool keep = false, recover = false;
  int labels = 0;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (absl::ConsumePrefix(&arg, "--jobs=")) {
      checkpoints.clear();
      for (absl::string_view n : absl::StrSplit(arg, ',')) {
        std::int64_t v = 0;
        if (!absl::SimpleAtoi(n, &v) || v <= 0) {
          fprintf(stderr, "bad --jobs\n");
          return 2;
        }
        checkpoints.push_back(v);
      }
    } else if (absl::ConsumePrefix(&arg, "--dir=")) {
      dir = std::string(arg);
    } else if (absl::ConsumePrefix(&arg, "--labels=")) {
      if (!absl::SimpleAtoi(arg, &labels) || labels < 0 || labels > 64) {
        fprintf(stderr, "bad --labels (0-64)\n");
        return 2;
      }
    } else if (arg == "--keep") {
      keep = true;
    } else if (arg == "--recover") {
      recover = true;
    } else {
      fprintf(stderr, "usage: broker_memory [--jobs=N1,N2,...] [--labels=N] [--dir=DIR] [--keep] | --recover --dir=DIR\n");
      return 2;
    }
  }
  if (recover && dir.empty()) {
    fprintf(stderr, "--recover needs --dir\n");
    return 2;
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/broker_memory.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return 1;
    dir = tmpl;
  }

  cohort::runtime::EventLoop loop;
  auto store = cohort::store::RocksJobStore::Open(cohort::store::RocksJobStoreOptions{.path = dir + "/db"});
  if (!store.ok()) {
    fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  prometheus::Registry registry;
  cohort::broker::BrokerMetrics metrics(registry);
  cohort::common::JobIdGenerator ids;
  cohort::broker::BrokerOptions options;  // result_ttl 7 days: every finished job is retained
  auto engine = std::make_unique<cohort::broker::BrokerEngine>(loop, **store, metrics, options,
                                                               [&ids] { return ids.Next(); });
  if (recover) {
    const std::int64_t rss_before = RssBytes();
    const absl::Time start = absl::Now();
    cohort::runtime::RunUntilComplete(loop, [&]() -> Task<void> {
      absl::Status started = co_await engine->Start();
      if (!started.ok()) {
        fprintf(stderr, "start: %s\n", started.ToString().c_str());
        std::abort();
      }
      const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
      printf("recovered %zu finished jobs: Start %.1f s (%.1f s with the store's open); rss %.1f MB before Start, "
             "peak %.1f MB, %.1f MB started\n",
             engine->summarized_jobs(), seconds, absl::ToDoubleSeconds(absl::Now() - process_start),
             rss_before / 1048576.0, PeakRssBytes() / 1048576.0, RssBytes() / 1048576.0);
      co_await engine->Stop();
    }());
    engine.reset();
    store->reset();
    return 0;
  }
  Executor exec;
  std::vector<Checkpoint> points;
  cohort::runtime::RunUntilComplete(loop, [&]() -> Task<void> {
    absl::Status started = co_await engine->Start();
    if (!started.ok()) {
      fprintf(stderr, "start: %s\n", started.ToString().c_str());
      std::abort();
    }
    v1::ExecutorMessage::Hello hello;
    hello.set_executor_id("bench");
    hello.set_capacity(kCapacity);
    hello.add_queues("bench");
    std::uint64_t session = *engine->Attach(hello, &exec);
    v1::ExecutorMessage credit;
    credit.mutable_credit()->set_credits(kCapacity);
    (void)engine->OnExecutorMessage(session, credit).ok();
    const absl::Time start = absl::Now();
    points.push_back({0, RssBytes(), HeapBytes(), 0});
    std::int64_t done = 0;
    for (std::int64_t target : checkpoints) {
      co_await RunJobs(*engine, exec, session, target - done, labels);
      done = target;
      points.push_back({done, RssBytes(), HeapBytes(), absl::ToDoubleSeconds(absl::Now() - start)});
    }
    engine->Detach(session, /*graceful=*/true);
    co_await engine->Stop();
  }());
  printf("%10s %10s %10s %14s %14s %16s %16s\n", "jobs", "seconds", "rss_mb", "rss_B/job", "heap_B/job",
         "rss_slope_B/job", "heap_slope_B/job");
  for (std::size_t i = 0; i < points.size(); ++i) {
    const Checkpoint& p = points[i];
    if (p.jobs == 0) {
      printf("%10d %10.1f %10.1f %14s %14s %16s %16s   (empty broker)\n", 0, 0.0, p.rss / 1048576.0, "-", "-", "-",
             "-");
      continue;
    }
    const Checkpoint& prev = points[i - 1];
    printf("%10lld %10.1f %10.1f %14.0f %14.0f %16.0f %16.0f\n", static_cast<long long>(p.jobs), p.seconds,
           p.rss / 1048576.0, double(p.rss - points[0].rss) / p.jobs, double(p.heap - points[0].heap) / p.jobs,
           double(p.rss - prev.rss) / (p.jobs - prev.jobs), double(p.heap - prev.heap) / (p.jobs - prev.jobs));
  }
  engine.reset();
  store->reset();
  if (!keep) std::filesystem::remove_all(dir);
  return 0;
}
