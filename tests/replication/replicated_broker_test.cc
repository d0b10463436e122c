// A replicated broker group (issue 18): three real cohort-broker replicas on 127.0.0.1
// (free ports, temp dirs) and a real cohort-executor running exec jobs that record each
// run, under a steady load of idempotent submits from a client given every replica's
// address (auth::MakeChannel's address list).
//
// - kill -9 of the leader, three times (each killed replica restarted, as the follower
//   it becomes): a new leader serves within 5 s each time; at the end every
//   acknowledged job exists and SUCCEEDED, no (job, attempt) ran twice, and the three
//   replicas' stores are identical (cohort-broker --store-digest once they stopped).
// - the leader partitioned from both peers (FaultProxy on every raft link): it
//   acknowledges nothing more and exits 75; the others elect a leader within 5 s;
//   healed and restarted, the old leader rejoins as a follower and converges.
//
// Each failover time (kill → next acknowledged Submit) is printed as
// "failover_ms=<n>" for the record.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/replication/broker_client.h"
#include "tests/replication/leader_forwarder.h"
#include "tests/testing/fault_proxy.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/free_port.h"

namespace cohort::testing {
namespace {

constexpr int kReplicas = 3;
constexpr absl::Duration kFailoverBound = absl::Seconds(5);

using ::cohort::testing::FreePort;

std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

// A job that appends "<job id> <attempt>" to `log` as soon as it runs, then sleeps a
// little: every real execution leaves one line.
cohort::v1::JobSpec RecordingJob(const std::string& log, const std::string& key) {
  cohort::v1::JobSpec s;
  s.set_queue("default");
  s.set_kind("exec");
  s.set_idempotency_key(key);
  s.set_max_attempts(50);
  s.mutable_backoff()->mutable_initial()->set_nanos(50'000'000);
  s.mutable_backoff()->set_multiplier(1);
  s.mutable_command()->add_argv("/bin/sh");
  s.mutable_command()->add_argv("-c");
  s.mutable_command()->add_argv(
      absl::StrCat("echo \"$COHORT_JOB_ID $COHORT_ATTEMPT\" >> '", log, "' && exec /bin/sleep 0.02"));
  return s;
}

// Three replicas of one group. With `proxied`, every raft link i → j goes through a
// FaultProxy of its own (replica i's --replicas names proxy (i, j) for j), so a test
// can cut one replica off from the others.
class ReplicaGroup {
 public:
  ReplicaGroup(const TempDir& dir, bool proxied) : dir_(dir) {
    for (int i = 0; i < kReplicas; ++i) {
      raft_ports_.push_back(FreePort());
      client_ports_.push_back(FreePort());
    }
    for (int i = 0; i < kReplicas; ++i) {
      for (int j = 0; j < kReplicas; ++j) {
        if (!proxied || i == j) continue;
        absl::StatusOr<std::unique_ptr<FaultProxy>> proxy = FaultProxy::Start(Local(raft_ports_[j]));
        EXPECT_TRUE(proxy.ok()) << proxy.status();
        proxies_[{i, j}] = std::move(*proxy);
      }
    }
    processes_.resize(kReplicas);
  }

  // Every replica's client address, for a client's --broker list.
  std::string ClientList() const {
    std::vector<std::string> all;
    for (int port : client_ports_) all.push_back(Local(port));
    return absl::StrJoin(all, ",");
  }
  std::vector<std::string> ClientAddresses() const { return absl::StrSplit(ClientList(), ','); }
  std::string DataDir(int i) const { return dir_.Path(absl::StrCat("replica-", i + 1)); }

  void Start(int i) {
    std::vector<std::string> members;
    for (int j = 0; j < kReplicas; ++j) {
      const bool via_proxy = i != j && proxies_.contains({i, j});
      members.push_back(absl::StrCat(j + 1, "=", via_proxy ? proxies_.at({i, j})->address() : Local(raft_ports_[j])));
    }
    absl::StatusOr<std::unique_ptr<ServiceProcess>> started = ServiceProcess::Start(
        BinaryPath("services/broker/cohort-broker"),
        {absl::StrCat("--replica-id=", i + 1), "--replicas=" + absl::StrJoin(members, ","),
         "--listen=" + Local(client_ports_[i]), "--metrics-listen=127.0.0.1:0", "--data-dir=" + DataDir(i),
         "--lease=3s", "--heartbeat-interval=300ms", "--min-free-disk=0"});
    ASSERT_TRUE(started.ok()) << started.status();
    processes_[i] = std::move(*started);
  }

  ServiceProcess& process(int i) { return *processes_[i]; }
  FaultProxy& proxy(int from, int to) { return *proxies_.at({from, to}); }

  // The replica serving clients (its client port answers), other than `except`, or -1
  // once `bound` has passed.
  int AwaitLeader(absl::Duration bound, int except = -1) {
    const absl::Time deadline = absl::Now() + bound;
    while (absl::Now() < deadline) {
      for (int i = 0; i < kReplicas; ++i) {
        if (i == except || processes_[i] == nullptr) continue;
        auto stub = StubFor(Local(client_ports_[i]));
        cohort::v1::ListQueuesResponse queues;
        if (stub->ListQueues(Deadline(absl::Milliseconds(300)).get(), {}, &queues).ok()) return i;
      }
    }
    return -1;
  }

  // The applied index each running replica reports, -1 for one that reports none.
  std::vector<double> AppliedIndexes() {
    std::vector<double> applied;
    for (auto& p : processes_) {
      absl::StatusOr<std::string> body = ScrapeMetrics(p->metrics_address());
      std::optional<double> v =
          body.ok() ? MetricValue(*body, "cohort_broker_replica_applied_index") : std::nullopt;
      applied.push_back(v.value_or(-1));
    }
    return applied;
  }

  // Waits (bounded) until every replica reports the same applied index.
  bool AwaitConverged(absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    while (absl::Now() < deadline) {
      std::vector<double> applied = AppliedIndexes();
      if (applied[0] > 0 && applied[0] == applied[1] && applied[1] == applied[2]) return true;
      absl::SleepFor(absl::Milliseconds(100));  // the sampled gauge moves every 250 ms
    }
    return false;
  }

  // Stops every replica (followers first, so the leader can commit nothing more once
  // it is alone) and returns each one's --store-digest line.
  std::vector<std::string> StopAndDigest(int leader) {
    std::vector<int> order;
    for (int i = 0; i < kReplicas; ++i) {
      if (i != leader) order.push_back(i);
    }
    order.push_back(leader);
    for (int i : order) {
      absl::StatusOr<int> exit = processes_[i]->Terminate(absl::Seconds(10));
      EXPECT_TRUE(exit.ok() && (*exit == 0 || *exit == 75)) << "replica " << i + 1 << ": " << exit.status();
    }
    std::vector<std::string> digests;
    for (int i = 0; i < kReplicas; ++i) {
      absl::StatusOr<Exited> digest = RunToExit(BinaryPath("services/broker/cohort-broker"),
                                                {"--store-digest", "--data-dir=" + DataDir(i)});
      EXPECT_TRUE(digest.ok() && digest->exit_code == 0) << (digest.ok() ? digest->stderr_text : digest.status().ToString());
      digests.push_back(digest.ok() ? digest->stdout_text : "");
    }
    return digests;
  }

 private:
  const TempDir& dir_;
  std::vector<int> raft_ports_;
  std::vector<int> client_ports_;
  std::map<std::pair<int, int>, std::unique_ptr<FaultProxy>> proxies_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
};

// Job id -> the attempt of each run, from the run log.
std::map<std::string, std::vector<int>> Runs(const std::string& log) {
  std::map<std::string, std::vector<int>> runs;
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> words = absl::StrSplit(line, ' ');
    int attempt = 0;
    EXPECT_TRUE(words.size() == 2 && absl::SimpleAtoi(words[1], &attempt)) << "bad run log line: " << line;
    if (words.size() == 2) runs[words[0]].push_back(attempt);
  }
  return runs;
}

// A client submitting batches of 4 recording jobs with idempotency keys, each batch
// retried (same keys) until it is acknowledged, through a channel over every replica.
class Load {
 public:
  Load(std::string targets, std::string log) : targets_(std::move(targets)), log_(std::move(log)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Load() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::string> acknowledged() {
    std::lock_guard lock(mu_);
    return acknowledged_;
  }
  // The first acknowledgement at or after `t`, or nullopt.
  std::optional<absl::Time> FirstAckAfter(absl::Time t) {
    std::lock_guard lock(mu_);
    for (absl::Time ack : ack_times_) {
      if (ack >= t) return ack;
    }
    return std::nullopt;
  }
  int batches_retried() const { return retried_; }
  // Waits up to `bound` until at least `count` jobs are acknowledged in all.
  bool AwaitAcknowledged(std::size_t count, absl::Duration bound) {
    std::unique_lock lock(mu_);
    return acked_.wait_for(lock, absl::ToChronoSeconds(bound), [&] { return acknowledged_.size() >= count; });
  }

 private:
  void Run() {
    auto stub = StubFor(targets_);
    for (int batch = 0; !stop_; ++batch) {
      cohort::v1::SubmitRequest req;
      for (int i = 0; i < 4; ++i) *req.add_jobs() = RecordingJob(log_, absl::StrCat("load-", batch, "-", i));
      while (!stop_) {
        cohort::v1::SubmitResponse resp;
        auto ctx = Deadline(absl::Seconds(2));
        ctx->set_wait_for_ready(true);  // a failover is waited for, up to the deadline
        if (stub->Submit(ctx.get(), req, &resp).ok()) {
          std::lock_guard lock(mu_);
          acknowledged_.insert(acknowledged_.end(), resp.job_ids().begin(), resp.job_ids().end());
          ack_times_.push_back(absl::Now());
          acked_.notify_all();
          break;
        }
        ++retried_;  // not acknowledged: the same keys again, so nothing is submitted twice
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(40));  // pacing, not synchronisation
    }
  }

  const std::string targets_;
  const std::string log_;
  std::atomic<bool> stop_{false};
  std::atomic<int> retried_{0};
  std::mutex mu_;
  std::condition_variable acked_;
  std::vector<std::string> acknowledged_;
  std::vector<absl::Time> ack_times_;
  std::thread thread_;
};

class ReplicatedBrokerTest : public ::testing::Test {
 protected:
  void StartExecutor(const std::string& broker) {
    absl::StatusOr<std::unique_ptr<ServiceProcess>> started =
        ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                              {"--broker=" + broker, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                               "--executor-id=replication-executor", "--capacity=16", "--allow-exec=/bin/sh",
                               "--kill-grace=200ms"});
    ASSERT_TRUE(started.ok()) << started.status();
    executor_ = std::move(*started);
  }

  // Every job of `ids` exists, ends SUCCEEDED (waiting up to `bound`), ran at least
  // once, and no (job, attempt) ran twice.
  void CheckEveryJobSucceededOnce(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids,
                                  absl::Duration bound) {
    ASSERT_FALSE(ids.empty());
    std::set<std::string> unfinished(ids.begin(), ids.end());
    std::map<std::string, cohort::v1::Job> jobs;
    const absl::Time deadline = absl::Now() + bound;
    while (!unfinished.empty() && absl::Now() < deadline) {
      for (auto it = unfinished.begin(); it != unfinished.end();) {
        cohort::v1::GetJobRequest req;
        req.set_job_id(*it);
        cohort::v1::GetJobResponse resp;
        grpc::Status s = stub.GetJob(Deadline(absl::Seconds(2)).get(), req, &resp);
        ASSERT_NE(s.error_code(), grpc::StatusCode::NOT_FOUND) << "acknowledged job " << *it << " was lost";
        if (s.ok() && resp.job().state() == cohort::v1::JOB_STATE_SUCCEEDED) {
          jobs[*it] = resp.job();
          it = unfinished.erase(it);
        } else {
          ++it;
        }
      }
      if (!unfinished.empty()) absl::SleepFor(absl::Milliseconds(200));  // polling the jobs' states
    }
    EXPECT_TRUE(unfinished.empty()) << unfinished.size() << " jobs did not succeed in time, e.g. "
                                    << *unfinished.begin();
    const std::map<std::string, std::vector<int>> runs = Runs(log_);
    for (const auto& [id, job] : jobs) {
      auto it = runs.find(id);
      ASSERT_NE(it, runs.end()) << "job " << id << " succeeded without running";
      std::set<int> seen;
      for (int attempt : it->second) {
        EXPECT_TRUE(seen.insert(attempt).second) << "job " << id << " attempt " << attempt << " ran twice";
        EXPECT_LE(attempt, job.attempt()) << "job " << id << " ran an attempt it does not record";
      }
    }
  }

  TempDir dir_{"replication"};
  std::string log_ = dir_.Path("runs");
  std::unique_ptr<ServiceProcess> executor_;
};

TEST_F(ReplicatedBrokerTest, KillingTheLeaderThreeTimesLosesNothingAndRunsNoAttemptTwice) {
  ReplicaGroup group(dir_, /*proxied=*/false);
  for (int i = 0; i < kReplicas; ++i) group.Start(i);
  int leader = group.AwaitLeader(absl::Seconds(10));
  ASSERT_GE(leader, 0) << "no leader within 10 s of the start";
  absl::StatusOr<std::unique_ptr<LeaderForwarder>> service = LeaderForwarder::Start(group.ClientAddresses());
  ASSERT_TRUE(service.ok()) << service.status();
  StartExecutor((*service)->address());

  Load load(group.ClientList(), log_);
  for (int round = 0; round < 3; ++round) {
    const std::size_t before = load.acknowledged().size();
    EXPECT_TRUE(load.AwaitAcknowledged(before + 40, absl::Seconds(15)))
        << "round " << round << ": fewer than 40 jobs acknowledged before the kill";
    const absl::Time killed = absl::Now();
    ASSERT_TRUE(group.process(leader).Kill9().ok());
    const int next = group.AwaitLeader(kFailoverBound + absl::Seconds(5), leader);
    ASSERT_GE(next, 0) << "round " << round << ": no new leader";
    const absl::Duration elected = absl::Now() - killed;
    EXPECT_LE(elected, kFailoverBound) << "round " << round << ": a new leader served after " << elected;
    group.Start(leader);  // it rejoins as a follower
    const absl::Time until = absl::Now() + absl::Seconds(10);
    std::optional<absl::Time> ack;
    while (!(ack = load.FirstAckAfter(killed)).has_value() && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(20));  // waiting for the client's next acknowledgement
    }
    ASSERT_TRUE(ack.has_value()) << "round " << round << ": nothing acknowledged after the kill";
    // The executor finds the new leader by itself (its own reconnect backoff, over
    // the channel's): it is attached once the leader lists it.
    auto new_leader = StubFor(group.ClientAddresses()[next]);
    absl::Duration executor_back = absl::InfiniteDuration();
    while (absl::Now() < until) {
      cohort::v1::ListExecutorsResponse executors;
      if (new_leader->ListExecutors(Deadline(absl::Seconds(1)).get(), {}, &executors).ok() &&
          executors.executors_size() > 0) {
        executor_back = absl::Now() - killed;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling the new leader's executor list
    }
    EXPECT_LT(executor_back, absl::Seconds(10)) << "round " << round << ": the executor did not come back";
    std::cout << "round " << round << ": killed replica " << leader + 1 << ", replica " << next + 1
              << " serves after " << elected << ", failover_ms=" << absl::ToInt64Milliseconds(*ack - killed)
              << ", executor_back_ms=" << absl::ToInt64Milliseconds(executor_back) << std::endl;
    leader = next;
  }
  EXPECT_TRUE(load.AwaitAcknowledged(load.acknowledged().size() + 20, absl::Seconds(15)))
      << "the last leader acknowledged nothing";
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs, " << load.batches_retried()
            << " submits retried" << std::endl;

  auto stub = StubFor(group.ClientList());
  CheckEveryJobSucceededOnce(*stub, load.acknowledged(), absl::Seconds(30));
  EXPECT_TRUE(executor_->Terminate().ok());
  ASSERT_TRUE(group.AwaitConverged(absl::Seconds(10))) << "applied indexes differ";
  const std::vector<std::string> digests = group.StopAndDigest(leader);
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(digests[1], digests[2]);
  for (const std::string& d : digests) std::cout << "store " << d;
}

TEST_F(ReplicatedBrokerTest, APartitionedLeaderStopsAcknowledgingExitsAndRejoinsAfterHealing) {
  ReplicaGroup group(dir_, /*proxied=*/true);
  for (int i = 0; i < kReplicas; ++i) group.Start(i);
  const int leader = group.AwaitLeader(absl::Seconds(10));
  ASSERT_GE(leader, 0) << "no leader within 10 s of the start";
  absl::StatusOr<std::unique_ptr<LeaderForwarder>> service = LeaderForwarder::Start(group.ClientAddresses());
  ASSERT_TRUE(service.ok()) << service.status();
  StartExecutor((*service)->address());

  auto old_leader = StubFor(group.ClientAddresses()[leader]);
  std::vector<std::string> acknowledged;
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < 8; ++i) *req.add_jobs() = RecordingJob(log_, absl::StrCat("before-", i));
  cohort::v1::SubmitResponse resp;
  ASSERT_TRUE(old_leader->Submit(Deadline(absl::Seconds(5)).get(), req, &resp).ok());
  acknowledged.assign(resp.job_ids().begin(), resp.job_ids().end());

  const absl::Time cut = absl::Now();
  for (int other = 0; other < kReplicas; ++other) {
    if (other == leader) continue;
    group.proxy(leader, other).Partition();
    group.proxy(other, leader).Partition();
  }
  // The old leader acknowledges nothing from now on: it cannot reach a majority.
  cohort::v1::SubmitRequest late;
  *late.add_jobs() = RecordingJob(log_, "during-partition");
  cohort::v1::SubmitResponse late_resp;
  grpc::Status refused = old_leader->Submit(Deadline(absl::Seconds(3)).get(), late, &late_resp);
  // Refused: the leader exits while the call waits (UNAVAILABLE), or it is still
  // waiting for a majority when the call's deadline passes.
  EXPECT_TRUE(refused.error_code() == grpc::StatusCode::UNAVAILABLE ||
              refused.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED)
      << refused.error_code() << " " << refused.error_message();
  // It steps down and exits 75 (crash-only), to come back as a follower.
  absl::StatusOr<int> exit = group.process(leader).Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 75);
  const int next = group.AwaitLeader(absl::Seconds(10), leader);
  ASSERT_GE(next, 0) << "the majority elected no leader";
  EXPECT_LE(absl::Now() - cut, absl::Seconds(5) + absl::Seconds(3)) << "(3 s of it the refused Submit's deadline)";

  for (int other = 0; other < kReplicas; ++other) {
    if (other == leader) continue;
    group.proxy(leader, other).Heal();
    group.proxy(other, leader).Heal();
  }
  group.Start(leader);
  auto stub = StubFor(group.ClientList());
  cohort::v1::SubmitRequest after;
  for (int i = 0; i < 8; ++i) *after.add_jobs() = RecordingJob(log_, absl::StrCat("after-", i));
  ASSERT_TRUE(stub->Submit(Deadline(absl::Seconds(5)).get(), after, &resp).ok());
  acknowledged.insert(acknowledged.end(), resp.job_ids().begin(), resp.job_ids().end());

  CheckEveryJobSucceededOnce(*stub, acknowledged, absl::Seconds(30));
  EXPECT_TRUE(executor_->Terminate().ok());
  ASSERT_TRUE(group.AwaitConverged(absl::Seconds(15))) << "the old leader did not catch up";
  const std::vector<std::string> digests = group.StopAndDigest(next);
  EXPECT_EQ(digests[0], digests[1]);
  EXPECT_EQ(digests[1], digests[2]);
}

}  // namespace
}  // namespace cohort::testing
