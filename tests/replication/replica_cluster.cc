#include "tests/replication/replica_cluster.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/grpcpp.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/free_port.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

constexpr char kFaketime[] = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

// True if a ListQueues at `address` answers within 300 ms: only the serving leader
// listens on its client port.
bool Serves(const std::string& address) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = auth::MakeChannel(address, {});
  if (!channel.ok()) return false;
  auto stub = cohort::v1::Broker::NewStub(*channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Milliseconds(300)));
  cohort::v1::ListQueuesResponse queues;
  return stub->ListQueues(&ctx, {}, &queues).ok();
}

}  // namespace

std::optional<std::string> ReplicaCluster::FaketimeLibrary() {
  if (access(kFaketime, R_OK) != 0) return std::nullopt;
  return kFaketime;
}

ReplicaCluster::ReplicaCluster(std::string dir, Options options) : dir_(std::move(dir)), options_(std::move(options)) {
  std::filesystem::create_directories(dir_);
  for (int i = 0; i < options_.replicas; ++i) {
    raft_ports_.push_back(FreePort());
    client_ports_.push_back(FreePort());
  }
  for (int i = 0; i < options_.replicas && options_.proxied; ++i) {
    for (int j = 0; j < options_.replicas; ++j) {
      if (i == j) continue;
      absl::StatusOr<std::unique_ptr<FaultProxy>> proxy = FaultProxy::Start(Local(raft_ports_[j]));
      if (!proxy.ok()) std::abort();  // a socket on 127.0.0.1 could not be bound: nothing can run
      proxies_[{i, j}] = std::move(*proxy);
    }
  }
  processes_.resize(options_.replicas);
  if (!options_.secret.empty()) std::ofstream(SecretFile()) << options_.secret << "\n";
}

ReplicaCluster::~ReplicaCluster() = default;

std::string ReplicaCluster::ClientList() const {
  std::vector<std::string> all;
  for (int port : client_ports_) all.push_back(Local(port));
  return absl::StrJoin(all, ",");
}

std::string ReplicaCluster::ClientAddress(int i) const { return Local(client_ports_[i]); }
std::string ReplicaCluster::DataDir(int i) const { return absl::StrCat(dir_, "/replica-", i + 1); }
std::string ReplicaCluster::Broker() const {
  return options_.broker_binary.empty() ? BinaryPath("services/broker/cohort-broker") : options_.broker_binary;
}
std::string ReplicaCluster::ClockFile(int i) const { return absl::StrCat(dir_, "/clock-", i + 1); }
std::string ReplicaCluster::SecretFile() const { return absl::StrCat(dir_, "/replica-secret"); }

absl::Status ReplicaCluster::Start(int i) {
  std::vector<std::string> members;
  for (int j = 0; j < options_.replicas; ++j) {
    auto proxy = proxies_.find({i, j});
    members.push_back(absl::StrCat(j + 1, "=", proxy != proxies_.end() ? proxy->second->address() : Local(raft_ports_[j])));
  }
  std::vector<std::string> args = {absl::StrCat("--replica-id=", i + 1), "--replicas=" + absl::StrJoin(members, ","),
                                   "--listen=" + Local(client_ports_[i]), "--metrics-listen=127.0.0.1:0",
                                   "--data-dir=" + DataDir(i)};
  if (!options_.secret.empty()) args.push_back("--replica-secret-file=" + SecretFile());
  args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  std::string binary = Broker();
  if (options_.faketime) {
    std::optional<std::string> library = FaketimeLibrary();
    if (!library) return absl::FailedPreconditionError("libfaketime is not installed (Debian package libfaketime)");
    if (access(ClockFile(i).c_str(), F_OK) != 0) {
      if (absl::Status s = JumpClock(i, "+0"); !s.ok()) return s;
    }
    // env(1) sets the variables and execs the broker in the same process (its pid and
    // process group stay the ones ServiceProcess manages).
    args.insert(args.begin(), {"LD_PRELOAD=" + *library, "FAKETIME_TIMESTAMP_FILE=" + ClockFile(i),
                               "FAKETIME_CACHE_DURATION=1", "FAKETIME_DONT_FAKE_MONOTONIC=1", binary});
    binary = "/usr/bin/env";
  }
  processes_[i].reset();
  absl::StatusOr<std::unique_ptr<ServiceProcess>> started = ServiceProcess::Start(binary, args);
  if (!started.ok()) return started.status();
  processes_[i] = std::move(*started);
  return absl::OkStatus();
}

absl::Status ReplicaCluster::Kill9(int i) {
  absl::Status s = processes_[i]->Kill9();
  processes_[i].reset();
  return s;
}

absl::StatusOr<int> ReplicaCluster::AwaitExit(int i, absl::Duration timeout) {
  absl::StatusOr<int> exit = processes_[i]->Wait(timeout);
  if (exit.ok()) processes_[i].reset();
  return exit;
}

void ReplicaCluster::Isolate(int i) {
  for (auto& [link, proxy] : proxies_) {
    if (link.first == i || link.second == i) proxy->Partition();
  }
}

void ReplicaCluster::Heal(int i) {
  for (auto& [link, proxy] : proxies_) {
    if (link.first == i || link.second == i) proxy->Heal();
  }
}

absl::Status ReplicaCluster::JumpClock(int i, const std::string& offset) {
  if (!options_.faketime) return absl::FailedPreconditionError("the cluster does not run under libfaketime");
  const std::string tmp = ClockFile(i) + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << offset << "\n";
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (std::rename(tmp.c_str(), ClockFile(i).c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp));  // atomic: never read half-written
  }
  return absl::OkStatus();
}

int ReplicaCluster::AwaitLeader(absl::Duration bound, int except) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    for (int i = 0; i < options_.replicas; ++i) {
      if (i != except && processes_[i] != nullptr && Serves(ClientAddress(i))) return i;
    }
  }
  return -1;
}

std::optional<double> ReplicaCluster::Metric(int i, const std::string& series) {
  if (processes_[i] == nullptr) return std::nullopt;
  absl::StatusOr<std::string> body = ScrapeMetrics(processes_[i]->metrics_address());
  return body.ok() ? MetricValue(*body, series) : std::nullopt;
}

bool ReplicaCluster::AwaitMetric(int i, const std::string& series, double at_least, absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    if (Metric(i, series).value_or(-1) >= at_least) return true;
    absl::SleepFor(absl::Milliseconds(100));  // polling: replica metrics are sampled every 250 ms
  }
  return false;
}

bool ReplicaCluster::AwaitCaughtUp(int i, double index, absl::Duration bound) {
  return AwaitMetric(i, "cohort_broker_replica_applied_index", index, bound);
}

bool ReplicaCluster::AwaitConverged(absl::Duration bound) {
  const absl::Time deadline = absl::Now() + bound;
  while (absl::Now() < deadline) {
    std::optional<double> first;
    bool same = true;
    for (int i = 0; i < options_.replicas && same; ++i) {
      if (processes_[i] == nullptr) continue;
      std::optional<double> applied = Metric(i, "cohort_broker_replica_applied_index");
      if (!applied || *applied <= 0 || (first && *first != *applied)) same = false;
      if (!first) first = applied;
    }
    if (same) return true;
    absl::SleepFor(absl::Milliseconds(100));  // polling: the gauge is sampled every 250 ms
  }
  return false;
}

std::vector<std::string> ReplicaCluster::StopAndDigest(int leader) {
  std::vector<int> order;
  for (int i = 0; i < options_.replicas; ++i) {
    if (i != leader) order.push_back(i);
  }
  order.push_back(leader);
  std::vector<std::string> digests(options_.replicas);
  for (int i : order) {
    if (processes_[i] == nullptr) continue;
    absl::StatusOr<int> exit = processes_[i]->Terminate(absl::Seconds(10));
    if (!exit.ok() || (*exit != 0 && *exit != 75)) {
      digests[i] = absl::StrCat("replica ", i + 1, " did not stop cleanly: ", exit.ok() ? absl::StrCat("exit ", *exit) : exit.status().ToString());
    }
    processes_[i].reset();
  }
  for (int i = 0; i < options_.replicas; ++i) {
    if (!digests[i].empty()) continue;
    absl::StatusOr<Exited> digest =
        RunToExit(Broker(), {"--store-digest", "--data-dir=" + DataDir(i)});
    if (!digest.ok()) {
      digests[i] = digest.status().ToString();
    } else {
      digests[i] = digest->exit_code == 0 ? digest->stdout_text : absl::StrCat("digest failed: ", digest->stderr_text);
    }
  }
  return digests;
}

}  // namespace cohort::testing
