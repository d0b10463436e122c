// What RaftLog costs (issue 18): three members in this process on 127.0.0.1, each with
// its own dir (fsync per append) and libuv thread.
//
//   raft_log_bench [--entries=2000] [--size=1024] [--kills=5] [--dir=/tmp]
//
// Prints the commit latency of sequential proposals at the leader (p50/p99, measured
// from the Propose call to the caller's task resuming on its loop with the position,
// i.e. committed on a majority and applied by the leader), then `kills` times stops the
// leader and reports the time until a member leads in a higher term, and until the
// next proposal commits (default timings: heartbeat 100 ms, election timeout 1 s).
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "libs/replication/raft_log.h"
#include "libs/runtime/runtime.h"
#include "tests/testing/free_port.h"

ABSL_FLAG(int, entries, 2000, "sequential proposals to time");
ABSL_FLAG(int, size, 1024, "bytes per entry");
ABSL_FLAG(int, kills, 5, "leader stops to time");
ABSL_FLAG(std::string, dir, "/tmp", "where the members' temp dirs go");
ABSL_FLAG(bool, secret, false, "members share a secret: streams authenticated and encrypted");

namespace cohort::replication {
namespace {

using ::cohort::testing::FreePort;

// Counts what it applies; its snapshot is the count.
class CountingMachine final : public StateMachine {
 public:
  void Apply(LogPosition, absl::string_view) override { ++applied_; }
  absl::StatusOr<std::string> Snapshot() override { return absl::StrCat(applied_); }
  absl::Status Restore(LogPosition, absl::string_view) override { return absl::OkStatus(); }

 private:
  long applied_ = 0;
};

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * (v.size() - 1))];
}

int Main() {
  constexpr int kMembers = 3;
  std::vector<Member> members;
  std::vector<std::string> dirs;
  for (int i = 0; i < kMembers; ++i) {
    members.push_back(Member{static_cast<std::uint64_t>(i + 1), absl::StrCat("127.0.0.1:", FreePort())});
    std::string pattern = absl::StrCat(absl::GetFlag(FLAGS_dir), "/raft_log_bench.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) return 1;
    dirs.push_back(pattern);
  }
  std::vector<std::unique_ptr<CountingMachine>> machines(kMembers);
  std::vector<std::unique_ptr<RaftLog>> logs(kMembers);
  auto start = [&](int i) {
    RaftLogOptions options;
    options.self = members[i];
    options.members = members;
    options.dir = dirs[i];
    if (absl::GetFlag(FLAGS_secret)) options.peer_secret = std::string(32, 'k');
    machines[i] = std::make_unique<CountingMachine>();
    absl::StatusOr<std::unique_ptr<RaftLog>> log = RaftLog::Start(options, machines[i].get());
    if (!log.ok()) {
      std::fprintf(stderr, "start: %s\n", log.status().ToString().c_str());
      std::exit(1);
    }
    logs[i] = std::move(*log);
  };
  // Polls the members' status (a bench, not a test): the highest-term leader.
  auto leader_above = [&](std::uint64_t term) {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      for (int i = 0; i < kMembers; ++i) {
        if (!logs[i]) continue;
        LogStatus s = logs[i]->status();
        if (s.role == Role::kLeader && s.term > term) return i;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    std::fprintf(stderr, "no leader within 30 s\n");
    std::exit(1);
  };
  for (int i = 0; i < kMembers; ++i) start(i);

  runtime::EventLoop loop;
  std::string entry(absl::GetFlag(FLAGS_size), 'x');
  int leader = leader_above(0);
  std::vector<double> latency_ms;
  absl::Time began = absl::Now();
  for (int n = 0; n < absl::GetFlag(FLAGS_entries); ++n) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<LogPosition> at = runtime::RunUntilComplete(loop, logs[leader]->Propose(entry));
    if (!at.ok()) {
      std::fprintf(stderr, "propose: %s\n", at.status().ToString().c_str());
      return 1;
    }
    latency_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
  }
  double seconds = absl::ToDoubleSeconds(absl::Now() - began);
  std::printf("commit %d x %d B: p50 %.3f ms  p99 %.3f ms  %.0f entries/s\n", absl::GetFlag(FLAGS_entries),
              absl::GetFlag(FLAGS_size), Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.99),
              latency_ms.size() / seconds);

  std::vector<double> elected_ms, committed_ms;
  for (int k = 0; k < absl::GetFlag(FLAGS_kills); ++k) {
    std::uint64_t term = logs[leader]->status().term;
    absl::Time stopped = absl::Now();
    logs[leader]->Stop();
    logs[leader].reset();
    int old = leader;
    leader = leader_above(term);
    elected_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - stopped));
    absl::StatusOr<LogPosition> at = runtime::RunUntilComplete(loop, logs[leader]->Propose(entry));
    if (!at.ok()) {
      std::fprintf(stderr, "propose after failover: %s\n", at.status().ToString().c_str());
      return 1;
    }
    committed_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - stopped));
    std::printf("kill %d: new leader after %.0f ms, first commit after %.0f ms\n", k + 1, elected_ms.back(),
                committed_ms.back());
    start(old);
  }
  if (!elected_ms.empty()) {
    std::printf("failover over %zu kills: elected p50 %.0f ms max %.0f ms; committed p50 %.0f ms max %.0f ms\n",
                elected_ms.size(), Percentile(elected_ms, 0.5), Percentile(elected_ms, 1.0),
                Percentile(committed_ms, 0.5), Percentile(committed_ms, 1.0));
  }
  for (auto& log : logs) {
    if (log) log->Stop();
  }
  return 0;
}

}  // namespace
}  // namespace cohort::replication

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return cohort::replication::Main();
}
