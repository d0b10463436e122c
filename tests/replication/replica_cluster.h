#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/testing/fault_proxy.h"
#include "tests/testing/service_process.h"

namespace cohort::testing {

// A group of real cohort-broker replicas (replicated mode) on 127.0.0.1, with free
// ports and data directories under `dir`, for fault tests and benchmarks.
//
// - proxied: every raft link i → j goes through a FaultProxy of its own (replica i's
//   --replicas names proxy (i, j) for j), so Isolate(i) cuts i off from the others in
//   both directions while it stays alive.
// - faketime: every replica runs under libfaketime (LD_PRELOAD) with its own
//   timestamp file, wall clock only (CLOCK_MONOTONIC is left alone, as a real clock
//   step leaves it), so JumpClock(i, "+2h") steps replica i's wall clock while it runs.
//   FaketimeLibrary() says whether the library is installed.
//
// Not thread-safe: one test thread drives it.
class ReplicaCluster {
 public:
  struct Options {
    int replicas = 3;
    bool proxied = false;
    bool faketime = false;
    // The group's secret (--replica-secret-file, written under `dir`); empty: replicas
    // run without one (unauthenticated replica traffic, and no flag a broker binary
    // from before the flag would refuse).
    std::string secret;
    // The cohort-broker binary; empty: the test's runfiles (BinaryPath).
    std::string broker_binary;
    // Flags given to every replica after the cluster's own.
    std::vector<std::string> extra_flags = {"--lease=3s", "--heartbeat-interval=300ms", "--min-free-disk=0"};
  };

  // The libfaketime shared object, or nullopt when it is not installed (Debian package
  // libfaketime).
  static std::optional<std::string> FaketimeLibrary();

  ReplicaCluster(std::string dir, Options options);
  ~ReplicaCluster();

  int size() const { return options_.replicas; }
  // Every replica's client address, comma-separated: a client's --broker list.
  std::string ClientList() const;
  std::string ClientAddress(int i) const;
  std::string DataDir(int i) const;

  // Starts replica i (again, after a kill: it rejoins from its data directory).
  absl::Status Start(int i);
  absl::Status Kill9(int i);
  bool running(int i) const { return processes_[i] != nullptr; }
  ServiceProcess& process(int i) { return *processes_[i]; }
  // Waits up to `timeout` for replica i to exit on its own (e.g. 75 on leadership loss).
  absl::StatusOr<int> AwaitExit(int i, absl::Duration timeout);

  // Cuts replica i off from every other replica (both directions) / heals those links.
  void Isolate(int i);
  void Heal(int i);

  // Steps replica i's wall clock to `offset` from real time ("+2h", "-30m", "+0"),
  // as libfaketime reads it (within a second). Requires Options::faketime.
  absl::Status JumpClock(int i, const std::string& offset);

  // The running replica whose client port answers (the serving leader), other than
  // `except`, polled until `bound` passes; -1 if none did.
  int AwaitLeader(absl::Duration bound, int except = -1);

  // One metric of replica i's /metrics (nullopt if unreachable or absent).
  std::optional<double> Metric(int i, const std::string& series);
  // Waits (bounded) until replica i reports `series` at `at_least` or more.
  bool AwaitMetric(int i, const std::string& series, double at_least, absl::Duration bound);
  // Waits (bounded) until replica i reports an applied index of at least `index`.
  bool AwaitCaughtUp(int i, double index, absl::Duration bound);
  // Waits (bounded) until every running replica reports the same applied index (once
  // writes stopped).
  bool AwaitConverged(absl::Duration bound);

  // Stops every replica (followers first, the leader last so it commits nothing more
  // alone) and returns each one's `cohort-broker --store-digest` line, or the error.
  std::vector<std::string> StopAndDigest(int leader);

 private:
  std::string ClockFile(int i) const;
  std::string SecretFile() const;
  std::string Broker() const;

  const std::string dir_;
  const Options options_;
  std::vector<int> raft_ports_;
  std::vector<int> client_ports_;
  std::map<std::pair<int, int>, std::unique_ptr<FaultProxy>> proxies_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
};

}  // namespace cohort::testing
