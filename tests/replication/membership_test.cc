// Membership changes of a replicated broker group without downtime (issue 18): real
// cohort-broker replicas on 127.0.0.1 (free ports, temp dirs), stopped by PID, under a
// steady load of idempotent submits through a client given every replica's address.
//
// - replace a dead replica: kill -9 a follower of 3, remove it (cohortctl replicas
//   remove's RPC), add a fresh replica 4 started with --join, then kill -9 the leader:
//   the two survivors, the new replica one of them, elect a leader and serve;
// - grow 3 -> 5: add replicas 4 and 5, one at a time; every replica then votes, and
//   `cohortctl replicas ls` lists them. Readiness (--health-listen, grpc.health.v1):
//   the leader and caught-up followers SERVING, a started replica not yet added
//   NOT_SERVING, then SERVING once it has caught up;
// - move leadership: `cohortctl replicas transfer --to` a follower (the old leader
//   restarts, exit 75), SIGTERM to the leader (it hands over, exits 0, and a follower
//   serves sooner than an election timeout), `replicas remove` of the leader (it hands
//   over first);
// - a transfer to a replica that is down fails (DEADLINE_EXCEEDED) and the leader keeps
//   leading, its process and its commits going;
// - a whole group SIGTERM'd at once stops well within a second (the leader finds no
//   live follower to hand over to and just stops) and, started again, has every job;
// - grow by starting replicas only (kubectl scale): replicas 4 and 5 started with the
//   join flags (--replica-address, --join-through) and not in --replicas ask the leader
//   to add them and become voters under load; replica 5, removed and stopped, returns
//   with its old log and is added again; the five then survive losing two;
// - every replica proves the group's secret (--replica-secret-file): one with another
//   secret is kept out (its raft connections refused and counted on both sides) until
//   restarted with the group's, and a Join without it is refused UNAUTHENTICATED.
// Each ends with: every acknowledged job exists at the leader, every live replica
// applied the same index, and their stores (cohort-broker --store-digest) are equal.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/replicas.grpc.pb.h"
#include "tests/replication/broker_client.h"
#include "tests/testing/free_port.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

constexpr int kMostReplicas = 5;

std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

std::shared_ptr<grpc::Channel> ChannelTo(const std::string& target) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = auth::MakeChannel(target, {});
  EXPECT_TRUE(channel.ok()) << channel.status();
  return *channel;
}

// grpc.health.v1.Health/Check of the whole server at `address` (plaintext, as kubelet's
// probe): true for SERVING (field 1 = 1), false for NOT_SERVING, nullopt if unanswered.
std::optional<bool> CheckHealth(const std::string& address) {
  grpc::GenericStub stub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  std::vector<grpc::Slice> slices;
  if (!status.ok() || !response.Dump(&slices).ok()) return std::nullopt;
  std::string bytes;
  for (const grpc::Slice& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  if (bytes == std::string("\x08\x01")) return true;
  if (bytes == std::string("\x08\x02")) return false;
  return std::nullopt;
}

// Up to five replicas (ids 1..5), each with its raft and client port chosen up front, so
// that one client channel lists every replica that may ever serve.
class Group {
 public:
  explicit Group(const TempDir& dir) : dir_(dir) {
    // Distinct: FreePort binds nothing, so two calls may return the same free port.
    std::set<int> taken;
    auto distinct = [&taken] {
      int port = FreePort();
      while (!taken.insert(port).second) port = FreePort();
      return port;
    };
    for (int i = 0; i < kMostReplicas; ++i) {
      raft_ports_.push_back(distinct());
      client_ports_.push_back(distinct());
      health_ports_.push_back(distinct());
    }
    processes_.resize(kMostReplicas);
    admin_ = cohort::v1::ReplicaAdmin::NewStub(ChannelTo(ClientList()));
    // Every replica proves the group's secret on its raft streams and its Joins.
    std::ofstream(SecretFile()) << "membership-test-secret-0123456789abcdef\n";
  }

  std::string SecretFile() const { return dir_.Path("replica-secret"); }

  // Replica `id` starts from now on with a secret other than the group's (`other`), or
  // with the group's again (`other` false).
  void GiveAnotherSecret(int id, bool other = true) {
    if (!other) {
      other_secret_.erase(id);
      return;
    }
    const std::string path = dir_.Path(absl::StrCat("other-secret-", id));
    std::ofstream(path) << "not-the-group-secret-0123456789abcdef\n";
    other_secret_[id] = path;
  }
  std::string SecretFileOf(int id) const {
    auto other = other_secret_.find(id);
    return other != other_secret_.end() ? other->second : SecretFile();
  }

  std::string ClientList() const {
    std::vector<std::string> all;
    for (int port : client_ports_) all.push_back(Local(port));
    return absl::StrJoin(all, ",");
  }
  std::string DataDir(int id) const { return dir_.Path(absl::StrCat("replica-", id)); }

  // Starts replica `id` with --replicas listing `ids` (it among them); `join` for one
  // added to a running group.
  void Start(int id, const std::vector<int>& ids, bool join) {
    std::vector<std::string> members;
    for (int m : ids) members.push_back(absl::StrCat(m, "=", Local(raft_ports_[m - 1])));
    std::vector<std::string> args = {absl::StrCat("--replica-id=", id), "--replicas=" + absl::StrJoin(members, ","),
                                     "--listen=" + Local(client_ports_[id - 1]), "--metrics-listen=127.0.0.1:0",
                                     "--data-dir=" + DataDir(id), "--min-free-disk=0",
                                     "--health-listen=" + Local(health_ports_[id - 1]),
                                     "--replica-secret-file=" + SecretFileOf(id)};
    if (join) args.push_back("--join");
    absl::StatusOr<std::unique_ptr<ServiceProcess>> started =
        ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    processes_[id - 1] = std::move(*started);
  }

  // Starts replica `id` (one of 1..3) as the chart starts a pod of the starting group:
  // --replicas lists {1, 2, 3}, with its own address, and every replica's health port
  // to ask through.
  void StartPod(int id) { StartWithJoinThrough(id); }

  // Starts replica `id` as a StatefulSet pod beyond the starting group starts: with
  // the starting group {1, 2, 3} in --replicas (which does not list it), its own raft
  // address, and every replica's health port to ask through. Nobody runs
  // `replicas add`: it asks the leader itself.
  void StartJoiner(int id) { StartWithJoinThrough(id); }

  // The flags the chart gives every pod: the starting group {1, 2, 3} in --replicas,
  // the pod's own raft address and the health ports to ask through.
  void StartWithJoinThrough(int id) {
    std::vector<std::string> members;
    for (int m = 1; m <= 3; ++m) members.push_back(absl::StrCat(m, "=", Local(raft_ports_[m - 1])));
    std::vector<std::string> health;
    for (int port : health_ports_) health.push_back(Local(port));
    std::vector<std::string> args = {absl::StrCat("--replica-id=", id), "--replicas=" + absl::StrJoin(members, ","),
                                     "--replica-address=" + Local(raft_ports_[id - 1]),
                                     "--join-through=" + absl::StrJoin(health, ","),
                                     "--listen=" + Local(client_ports_[id - 1]), "--metrics-listen=127.0.0.1:0",
                                     "--data-dir=" + DataDir(id), "--min-free-disk=0",
                                     "--health-listen=" + Local(health_ports_[id - 1]),
                                     "--replica-secret-file=" + SecretFileOf(id)};
    absl::StatusOr<std::unique_ptr<ServiceProcess>> started =
        ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    processes_[id - 1] = std::move(*started);
  }

  // Waits (bounded) until the leader lists exactly `ids` as voters.
  bool AwaitVoters(const std::set<int>& ids, absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    while (absl::Now() < deadline) {
      absl::StatusOr<cohort::v1::ListReplicasResponse> list = List(absl::Seconds(5));
      std::set<int> voters;
      if (list.ok()) {
        for (const cohort::v1::ReplicaInfo& r : list->replicas()) {
          if (r.role() == cohort::v1::ReplicaInfo::VOTER) voters.insert(static_cast<int>(r.id()));
        }
      }
      if (voters == ids) return true;
      absl::SleepFor(absl::Milliseconds(100));  // polling the leader's configuration
    }
    return false;
  }

  void Kill9(int id) {
    ASSERT_TRUE(processes_[id - 1]->Kill9().ok());
    processes_[id - 1].reset();
  }

  // SIGTERMs replica `id` and reaps it: its exit status.
  absl::StatusOr<int> Terminate(int id) {
    absl::StatusOr<int> exit = processes_[id - 1]->Terminate(absl::Seconds(10));
    processes_[id - 1].reset();
    return exit;
  }

  // SIGTERMs every running replica at once (helm uninstall, a node drain) and reaps
  // them: per replica id, its exit status and how long after the signal it was seen
  // exited (to within a few milliseconds: each is polled in turn).
  std::map<int, std::pair<absl::StatusOr<int>, absl::Duration>> TerminateAll(absl::Duration bound) {
    std::map<int, std::pair<absl::StatusOr<int>, absl::Duration>> exits;
    const absl::Time signalled = absl::Now();
    for (auto& p : processes_) {
      if (p != nullptr) kill(p->pid(), SIGTERM);
    }
    bool running = true;
    while (running) {
      running = false;
      for (int id = 1; id <= kMostReplicas; ++id) {
        if (processes_[id - 1] == nullptr) continue;
        absl::StatusOr<int> exit = processes_[id - 1]->Wait(absl::Milliseconds(1));
        if (!exit.ok() && absl::Now() - signalled < bound) {
          running = true;  // still stopping
          continue;
        }
        const absl::Duration took = absl::Now() - signalled;
        if (!exit.ok()) exit = processes_[id - 1]->Terminate(absl::Seconds(10));
        processes_[id - 1].reset();
        exits.emplace(id, std::make_pair(std::move(exit), took));
      }
    }
    return exits;
  }

  // Whether replica `id` is still running (if it exited, it is reaped and its status printed).
  bool Running(int id) {
    if (processes_[id - 1] == nullptr) return false;
    absl::StatusOr<int> exit = processes_[id - 1]->Wait(absl::Milliseconds(1));
    if (!exit.ok()) return true;
    std::cout << "replica " << id << " exited with " << *exit << std::endl;
    processes_[id - 1].reset();
    return false;
  }

  // Waits (bounded) for replica `id` to exit on its own and reaps it: its exit status.
  absl::StatusOr<int> AwaitExit(int id, absl::Duration bound) {
    absl::StatusOr<int> exit = processes_[id - 1]->Wait(bound);
    if (exit.ok()) processes_[id - 1].reset();
    return exit;
  }

  // The group's membership as its leader lists it (the leader alone listens for
  // clients), waiting up to `bound` for one to answer.
  absl::StatusOr<cohort::v1::ListReplicasResponse> List(absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    grpc::Status last;
    while (absl::Now() < deadline) {
      cohort::v1::ListReplicasResponse response;
      auto ctx = Deadline(absl::Seconds(1));
      ctx->set_wait_for_ready(true);
      last = admin_->ListReplicas(ctx.get(), {}, &response);
      if (last.ok()) return response;
    }
    return absl::UnavailableError(absl::StrCat("no leader listed the replicas: ", last.error_message()));
  }

  // The id of the replica that leads, or 0.
  int Leader(absl::Duration bound) {
    absl::StatusOr<cohort::v1::ListReplicasResponse> list = List(bound);
    if (!list.ok()) return 0;
    for (const cohort::v1::ReplicaInfo& r : list->replicas()) {
      if (r.leader()) return static_cast<int>(r.id());
    }
    return 0;
  }

  // AddReplica / RemoveReplica at the leader, retried while no leader answers
  // (UNAVAILABLE: nothing changed) for up to 30 s.
  grpc::Status Add(int id) {
    cohort::v1::AddReplicaRequest request;
    request.set_id(id);
    request.set_address(Local(raft_ports_[id - 1]));
    return Retried([&](grpc::ClientContext* ctx) {
      cohort::v1::AddReplicaResponse response;
      return admin_->AddReplica(ctx, request, &response);
    });
  }
  grpc::Status Remove(int id) {
    cohort::v1::RemoveReplicaRequest request;
    request.set_id(id);
    return Retried([&](grpc::ClientContext* ctx) {
      cohort::v1::RemoveReplicaResponse response;
      return admin_->RemoveReplica(ctx, request, &response);
    });
  }

  // The voters' ids as the leader lists them.
  std::set<int> Voters() {
    std::set<int> ids;
    absl::StatusOr<cohort::v1::ListReplicasResponse> list = List(absl::Seconds(10));
    EXPECT_TRUE(list.ok()) << list.status();
    if (!list.ok()) return ids;
    for (const cohort::v1::ReplicaInfo& r : list->replicas()) {
      if (r.role() == cohort::v1::ReplicaInfo::VOTER) ids.insert(static_cast<int>(r.id()));
    }
    return ids;
  }

  // Waits (bounded) until every running replica reports the same positive applied
  // index, unchanged over more than two samples of the gauge (sampled every 250 ms):
  // the group is quiet, so stopping it now leaves every store at that index (an entry
  // committed later might reach the leader's store and not yet a follower's).
  bool AwaitConverged(absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    double stable = -1;
    while (absl::Now() < deadline) {
      std::set<double> applied;
      for (auto& p : processes_) {
        if (p == nullptr) continue;
        absl::StatusOr<std::string> body = ScrapeMetrics(p->metrics_address());
        std::optional<double> v = body.ok() ? MetricValue(*body, "cohort_broker_replica_applied_index") : std::nullopt;
        applied.insert(v.value_or(-1));
      }
      const double now = applied.size() == 1 ? *applied.begin() : -1;
      if (now > 0 && now == stable) return true;
      stable = now;
      absl::SleepFor(absl::Milliseconds(600));  // polling the sampled gauges
    }
    return false;
  }

  // Replica `id`'s readiness (its --health-listen port): SERVING, NOT_SERVING, or nullopt.
  std::optional<bool> Ready(int id) { return CheckHealth(Local(health_ports_[id - 1])); }

  // Waits (bounded) until replica `id`'s readiness is `ready`; the replica decides it
  // every 250 ms.
  bool AwaitReady(int id, bool ready, absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    while (Ready(id) != ready) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(50));  // polling the health service
    }
    return true;
  }

  // A gauge of replica `id`'s /metrics, or nullopt.
  std::optional<double> Metric(int id, std::string_view series) {
    absl::StatusOr<std::string> body = ScrapeMetrics(processes_[id - 1]->metrics_address());
    return body.ok() ? MetricValue(*body, series) : std::nullopt;
  }

  // Stops every running replica (the leader last) and returns each one's
  // --store-digest line.
  std::vector<std::string> StopAndDigest(int leader) {
    std::vector<int> order;
    for (int id = 1; id <= kMostReplicas; ++id) {
      if (processes_[id - 1] != nullptr && id != leader) order.push_back(id);
    }
    if (processes_[leader - 1] != nullptr) order.push_back(leader);
    std::vector<std::string> digests;
    for (int id : order) {
      absl::StatusOr<int> exit = processes_[id - 1]->Terminate(absl::Seconds(10));
      EXPECT_TRUE(exit.ok() && (*exit == 0 || *exit == 75)) << "replica " << id << ": " << exit.status();
      processes_[id - 1].reset();
    }
    for (int id : order) {
      absl::StatusOr<Exited> digest = RunToExit(BinaryPath("services/broker/cohort-broker"),
                                                {"--store-digest", "--data-dir=" + DataDir(id)});
      EXPECT_TRUE(digest.ok() && digest->exit_code == 0)
          << (digest.ok() ? digest->stderr_text : digest.status().ToString());
      digests.push_back(digest.ok() ? digest->stdout_text : "");
    }
    return digests;
  }

 private:
  template <typename Call>
  grpc::Status Retried(Call call) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    grpc::Status status;
    do {
      auto ctx = Deadline(absl::Seconds(20));
      ctx->set_wait_for_ready(true);
      status = call(ctx.get());
    } while (status.error_code() == grpc::StatusCode::UNAVAILABLE && absl::Now() < deadline);
    return status;
  }

  const TempDir& dir_;
  std::vector<int> raft_ports_;
  std::vector<int> client_ports_;
  std::vector<int> health_ports_;
  std::vector<std::unique_ptr<ServiceProcess>> processes_;
  std::map<int, std::string> other_secret_;  // GiveAnotherSecret
  std::unique_ptr<cohort::v1::ReplicaAdmin::Stub> admin_;  // on every replica's client address
};

// Batches of 4 jobs with idempotency keys, each retried (same keys) until acknowledged,
// through one channel over every replica's client address.
class Load {
 public:
  explicit Load(std::string targets) : targets_(std::move(targets)) {
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
  // Waits (bounded) until `more` batches beyond those acknowledged now are acknowledged.
  bool AwaitMore(int more, absl::Duration bound) {
    const std::size_t target = acknowledged().size() + 4 * more;
    const absl::Time deadline = absl::Now() + bound;
    while (acknowledged().size() < target) {
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(10));  // polling the load's progress
    }
    return true;
  }

 private:
  void Run() {
    auto stub = cohort::v1::Broker::NewStub(ChannelTo(targets_));
    for (int batch = 0; !stop_; ++batch) {
      cohort::v1::SubmitRequest req;
      for (int i = 0; i < 4; ++i) {
        cohort::v1::JobSpec* job = req.add_jobs();
        job->set_queue("default");
        job->set_kind("membership");
        job->set_idempotency_key(absl::StrCat("load-", batch, "-", i));
      }
      while (!stop_) {
        cohort::v1::SubmitResponse resp;
        auto ctx = Deadline(absl::Seconds(2));
        ctx->set_wait_for_ready(true);  // a failover is waited for, up to the deadline
        if (stub->Submit(ctx.get(), req, &resp).ok()) {
          std::lock_guard lock(mu_);
          acknowledged_.insert(acknowledged_.end(), resp.job_ids().begin(), resp.job_ids().end());
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(30));  // pacing, not synchronisation
    }
  }

  const std::string targets_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> acknowledged_;
  std::thread thread_;
};

class MembershipTest : public ::testing::Test {
 protected:
  // Every acknowledged job exists at the group's leader.
  void ExpectEveryJobExists(const std::vector<std::string>& ids) {
    ASSERT_FALSE(ids.empty());
    auto stub = cohort::v1::Broker::NewStub(ChannelTo(group_.ClientList()));
    for (const std::string& id : ids) {
      cohort::v1::GetJobRequest req;
      req.set_job_id(id);
      cohort::v1::GetJobResponse resp;
      auto ctx = Deadline(absl::Seconds(5));
      ctx->set_wait_for_ready(true);
      grpc::Status s = stub->GetJob(ctx.get(), req, &resp);
      ASSERT_TRUE(s.ok()) << "acknowledged job " << id << ": " << s.error_message();
    }
  }

  void ExpectEqualStores(int leader, std::size_t live) {
    ASSERT_TRUE(group_.AwaitConverged(absl::Seconds(15))) << "applied indexes differ";
    const std::vector<std::string> digests = group_.StopAndDigest(leader);
    ASSERT_EQ(digests.size(), live);
    for (const std::string& d : digests) {
      EXPECT_EQ(d, digests[0]);
      std::cout << "store " << d;
    }
  }

  TempDir dir_{"membership"};
  Group group_{dir_};
};

TEST_F(MembershipTest, ADeadReplicaIsReplacedAndTheGroupSurvivesLosingItsLeaderAfterwards) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  const int dead = leader % 3 + 1;  // a follower
  group_.Kill9(dead);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10))) << "the group stopped serving without a follower";
  grpc::Status removed = group_.Remove(dead);
  ASSERT_TRUE(removed.ok()) << removed.error_message();
  std::vector<int> members;
  for (int id = 1; id <= 3; ++id) {
    if (id != dead) members.push_back(id);
  }
  members.push_back(4);
  group_.Start(4, members, /*join=*/true);
  grpc::Status added = group_.Add(4);
  ASSERT_TRUE(added.ok()) << added.error_message();
  EXPECT_EQ(group_.Voters(), std::set<int>(members.begin(), members.end()));
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // Losing the leader now leaves two of three voters: the new replica's vote counts.
  const absl::Time killed = absl::Now();
  group_.Kill9(leader);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(15))) << "no leader served after the old one was killed";
  const int next = group_.Leader(absl::Seconds(10));
  ASSERT_GT(next, 0);
  EXPECT_NE(next, leader);
  std::cout << "replica " << next << " serves " << absl::Now() - killed << " after replica " << leader
            << " was killed" << std::endl;
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(next, 2);
}

TEST_F(MembershipTest, AGroupOfThreeGrowsToFiveUnderLoad) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  // Ready (the chart's readinessProbe) is the leader and every follower caught up.
  for (int id = 1; id <= 3; ++id) EXPECT_TRUE(group_.AwaitReady(id, true, absl::Seconds(5))) << "replica " << id;
  EXPECT_EQ(group_.Metric(leader, "cohort_broker_replica_ready"), 1.0);
  for (int id = 4; id <= 5; ++id) {
    std::vector<int> members;
    for (int m = 1; m <= id; ++m) members.push_back(m);
    group_.Start(id, members, /*join=*/true);
    // Started (its health port answers) but not yet added: it heard no leader, it holds
    // nothing, it is not Ready.
    EXPECT_EQ(group_.Ready(id), std::optional<bool>(false)) << "replica " << id << " before it was added";
    EXPECT_EQ(group_.Metric(id, "cohort_broker_replica_ready"), 0.0);
    grpc::Status added = group_.Add(id);
    ASSERT_TRUE(added.ok()) << "replica " << id << ": " << added.error_message();
    EXPECT_TRUE(group_.AwaitReady(id, true, absl::Seconds(5))) << "replica " << id << " once it caught up";
    ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10))) << "the group stopped serving after adding " << id;
  }
  EXPECT_EQ(group_.Voters(), (std::set<int>{1, 2, 3, 4, 5}));
  // What an operator sees: cohortctl replicas ls lists five voters; a bad removal is
  // refused by the leader (exit 3, NOT_FOUND) and changes nothing.
  const std::string server = "--server=" + group_.ClientList();
  absl::StatusOr<Exited> ls = RunToExit(BinaryPath("services/cli/cohortctl"), {server, "replicas", "ls"});
  ASSERT_TRUE(ls.ok()) << ls.status();
  EXPECT_EQ(ls->exit_code, 0) << ls->stderr_text;
  int voters = 0;
  for (absl::string_view line : absl::StrSplit(ls->stdout_text, '\n')) voters += absl::StrContains(line, " voter ");
  EXPECT_EQ(voters, 5) << ls->stdout_text;
  absl::StatusOr<Exited> bad = RunToExit(BinaryPath("services/cli/cohortctl"), {server, "replicas", "remove", "9"});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->exit_code, 3);
  EXPECT_TRUE(absl::StrContains(bad->stderr_text, "NOT_FOUND")) << bad->stderr_text;
  leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0);
  // The leader's metrics follow: five voters, a lag series per follower.
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (group_.Metric(leader, "cohort_broker_replica_members") != 5.0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));  // the gauges are sampled every 250 ms
  }
  EXPECT_EQ(group_.Metric(leader, "cohort_broker_replica_members"), 5.0);
  for (int id = 1; id <= 5; ++id) {
    if (id == leader) continue;
    EXPECT_TRUE(group_.Metric(leader, absl::StrCat("cohort_broker_replica_follower_lag_entries{follower=\"", id,
                                                   "\"}"))
                    .has_value())
        << "follower " << id;
  }
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(leader, 5);
}

TEST_F(MembershipTest, ReplicasStartedWithTheJoinFlagsOnlyBecomeVotersRejoinWithTheirOldLogAndSurviveLosingTwo) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  const int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // kubectl scale 3 -> 5: two pods start at once with an empty store, not in --replicas.
  const absl::Time started = absl::Now();
  group_.StartJoiner(4);
  group_.StartJoiner(5);
  ASSERT_TRUE(group_.AwaitVoters({1, 2, 3, 4, 5}, absl::Seconds(30))) << "the new replicas did not become voters";
  std::cout << "replicas 4 and 5 voters " << absl::Now() - started << " after they started" << std::endl;
  for (int id = 4; id <= 5; ++id) {
    EXPECT_TRUE(group_.AwaitReady(id, true, absl::Seconds(5))) << "replica " << id << " once it caught up";
    EXPECT_EQ(group_.Metric(id, "cohort_broker_replica_joining"), 0.0) << "replica " << id;
  }
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10))) << "the group stopped serving while growing";

  // Scaled down (replicas remove 5, the pod stops, its volume stays), then up again:
  // replica 5 returns with its old log, which still lists it, and asks to be added.
  ASSERT_TRUE(group_.Remove(5).ok());
  ASSERT_TRUE(group_.Terminate(5).ok());
  ASSERT_TRUE(group_.AwaitVoters({1, 2, 3, 4}, absl::Seconds(10)));
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  const absl::Time returned = absl::Now();
  group_.StartJoiner(5);
  ASSERT_TRUE(group_.AwaitVoters({1, 2, 3, 4, 5}, absl::Seconds(30))) << "replica 5 did not rejoin with its old log";
  std::cout << "replica 5 a voter again " << absl::Now() - returned << " after it returned" << std::endl;
  EXPECT_TRUE(group_.AwaitReady(5, true, absl::Seconds(5)));

  // Five voters survive losing two: the leader and another of the starting three.
  const int other = leader % 3 + 1;
  group_.Kill9(leader);
  group_.Kill9(other);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(15))) << "no leader served after losing two of five";
  const int next = group_.Leader(absl::Seconds(10));
  ASSERT_GT(next, 0);
  EXPECT_NE(next, leader);
  EXPECT_NE(next, other);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(next, 3);
}

TEST_F(MembershipTest, AStartingReplicaRemovedThenBackWithAnEmptyVolumeIsAddedBackByItself) {
  // The chart's starting pods: each asks the leader to confirm its membership.
  for (int id = 1; id <= 3; ++id) group_.StartPod(id);
  ASSERT_TRUE(group_.AwaitVoters({1, 2, 3}, absl::Seconds(15))) << "the starting group did not form";
  const int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0);
  for (int id = 1; id <= 3; ++id) {
    EXPECT_TRUE(group_.AwaitReady(id, true, absl::Seconds(10))) << "replica " << id;
  }
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // A follower of the starting group is removed and its pod stops; its volume is lost.
  const int lost = leader % 3 + 1;
  ASSERT_TRUE(group_.Remove(lost).ok());
  ASSERT_TRUE(group_.Terminate(lost).ok());
  std::set<int> rest = {1, 2, 3};
  rest.erase(lost);
  ASSERT_TRUE(group_.AwaitVoters(rest, absl::Seconds(10)));
  std::filesystem::remove_all(group_.DataDir(lost));
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // Back with an empty volume it bootstraps the starting configuration, which lists it:
  // before, it stayed apart and never Ready. Now it asks, and the leader adds it back.
  const absl::Time returned = absl::Now();
  group_.StartPod(lost);
  ASSERT_TRUE(group_.AwaitVoters({1, 2, 3}, absl::Seconds(30))) << "replica " << lost << " was not added back";
  std::cout << "replica " << lost << " a voter again " << absl::Now() - returned << " after it returned empty"
            << std::endl;
  EXPECT_TRUE(group_.AwaitReady(lost, true, absl::Seconds(10)));
  EXPECT_EQ(group_.Metric(lost, "cohort_broker_replica_joining"), 0.0);

  // The three survive losing the leader: the returned replica counts in the majority.
  group_.Kill9(leader);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(15))) << "no leader served after the leader was killed";
  const int next = group_.Leader(absl::Seconds(10));
  ASSERT_GT(next, 0);
  EXPECT_NE(next, leader);
  load.Stop();
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(next, 2);
}

TEST_F(MembershipTest, AReplicaWithoutTheGroupsSecretIsKeptOutAndAJoinWithoutItIsRefused) {
  // Replica 3 has the group's configuration but another secret: 1 and 2 form the group.
  group_.GiveAnotherSecret(3);
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  const int leader = group_.Leader(absl::Seconds(15));
  ASSERT_TRUE(leader == 1 || leader == 2) << "leader " << leader;
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  const auto await_metric = [&](int id, const std::string& series) {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    std::optional<double> value = group_.Metric(id, series);
    while (value.value_or(0) < 1 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(100));  // polling: metrics are sampled every 250 ms
      value = group_.Metric(id, series);
    }
    return value.value_or(0);
  };
  // Each side of the leader's connections to replica 3 refuses the other's proof.
  EXPECT_GE(await_metric(leader, "cohort_broker_replica_peer_auth_failures_total{direction=\"connect\"}"), 1);
  EXPECT_GE(await_metric(3, "cohort_broker_replica_peer_auth_failures_total{direction=\"accept\"}"), 1);
  // Index 1 is the configuration every starting replica bootstraps by itself.
  EXPECT_EQ(group_.Metric(3, "cohort_broker_replica_applied_index"), 1.0) << "replica 3 received entries";
  EXPECT_EQ(group_.Ready(3), false);

  // A pod beyond the group with another secret asks to join: refused, never added.
  group_.GiveAnotherSecret(4);
  group_.StartJoiner(4);
  EXPECT_GE(await_metric(leader, "cohort_broker_replica_join_requests_total{code=\"UNAUTHENTICATED\"}"), 1);
  EXPECT_TRUE(group_.AwaitVoters({1, 2, 3}, absl::Seconds(1)));
  ASSERT_TRUE(group_.Terminate(4).ok());

  // Restarted with the group's secret, replica 3 catches up and holds the same jobs.
  ASSERT_TRUE(group_.Terminate(3).ok());
  group_.GiveAnotherSecret(3, false);
  group_.Start(3, {1, 2, 3}, false);
  EXPECT_TRUE(group_.AwaitReady(3, true, absl::Seconds(15)));
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  load.Stop();
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(leader, 3);
}

TEST_F(MembershipTest, AWholeGroupSigtermedAtOnceStopsWellWithinASecondAndLosesNothing) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  ASSERT_GT(group_.Leader(absl::Seconds(10)), 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(5, absl::Seconds(10)));
  for (int id = 1; id <= 3; ++id) ASSERT_TRUE(group_.AwaitReady(id, true, absl::Seconds(5))) << "replica " << id;

  // helm uninstall: every replica SIGTERM'd at once, the load still running. The leader
  // must not hand over to a follower that is stopping too, nor wait for one.
  for (const auto& [id, exit] : group_.TerminateAll(absl::Seconds(5))) {
    ASSERT_TRUE(exit.first.ok()) << "replica " << id << ": " << exit.first.status();
    EXPECT_EQ(*exit.first, 0) << "replica " << id;
    std::cout << "replica " << id << " exited " << exit.second << " after SIGTERM" << std::endl;
    EXPECT_LT(exit.second, absl::Milliseconds(600)) << "replica " << id << " stopped as slowly as an election timeout";
  }
  load.Stop();

  // The group starts again from its stores: every acknowledged job is there.
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  const int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0) << "no leader after the restart";
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(leader, 3);
}

TEST_F(MembershipTest, AFailedTransferUnderLoadLeavesTheLeaderLeadingAndLosesNothing) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  const int leader = group_.Leader(absl::Seconds(10));
  ASSERT_GT(leader, 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // The target is down: it never takes over, and the leader's commits wait meanwhile.
  const int down = leader % 3 + 1;
  group_.Kill9(down);
  const std::string server = "--server=" + group_.ClientList();
  const absl::Time asked = absl::Now();
  absl::StatusOr<Exited> moved = RunToExit(BinaryPath("services/cli/cohortctl"),
                                           {server, "replicas", "transfer", absl::StrCat("--to=", down)});
  ASSERT_TRUE(moved.ok()) << moved.status();
  std::cout << "cohortctl replicas transfer to a dead replica took " << absl::Now() - asked << ": "
            << moved->stderr_text;
  EXPECT_NE(moved->exit_code, 0);
  EXPECT_TRUE(absl::StrContains(moved->stderr_text, "DEADLINE_EXCEEDED")) << moved->stderr_text;

  // The leader is still running, still leads, and goes on acknowledging.
  ASSERT_TRUE(load.AwaitMore(5, absl::Seconds(10))) << "no acknowledgement after the failed transfer";
  EXPECT_TRUE(group_.Running(leader)) << "the leader ended its process after a failed transfer";
  EXPECT_EQ(group_.Leader(absl::Seconds(5)), leader);
  EXPECT_EQ(group_.Metric(leader, "cohort_broker_replica_transfers_total{reason=\"command\",result=\"failed\"}"),
            1.0);
  EXPECT_EQ(group_.Metric(leader, "cohort_broker_replica_leader_changes_total"), 1.0) << "leadership moved";

  group_.Start(down, {1, 2, 3}, false);
  ASSERT_TRUE(group_.AwaitReady(down, true, absl::Seconds(10))) << "the restarted replica did not catch up";
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(leader, 3);
}

TEST_F(MembershipTest, LeadershipMovesByCommandAndOnSigtermWithoutAnElectionTimeoutAndNothingIsLost) {
  for (int id = 1; id <= 3; ++id) group_.Start(id, {1, 2, 3}, false);
  const int first = group_.Leader(absl::Seconds(10));
  ASSERT_GT(first, 0) << "no leader within 10 s of the start";
  Load load(group_.ClientList());
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));
  const std::string server = "--server=" + group_.ClientList();

  // cohortctl replicas transfer --to: the named follower leads; the old leader restarts
  // as a follower (exit 75) and is started again, as its supervisor would.
  const int named = first % 3 + 1;
  const absl::Time asked = absl::Now();
  absl::StatusOr<Exited> moved = RunToExit(BinaryPath("services/cli/cohortctl"),
                                           {server, "replicas", "transfer", absl::StrCat("--to=", named)});
  ASSERT_TRUE(moved.ok()) << moved.status();
  ASSERT_EQ(moved->exit_code, 0) << moved->stderr_text;
  std::cout << "cohortctl replicas transfer took " << absl::Now() - asked << ": " << moved->stdout_text;
  EXPECT_TRUE(absl::StrContains(moved->stdout_text, absl::StrCat("replica ", named, " leads"))) << moved->stdout_text;
  EXPECT_EQ(group_.Leader(absl::Seconds(10)), named);
  absl::StatusOr<int> old_exit = group_.AwaitExit(first, absl::Seconds(10));
  ASSERT_TRUE(old_exit.ok()) << old_exit.status();
  EXPECT_EQ(*old_exit, 75);
  group_.Start(first, {1, 2, 3}, false);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10))) << "no acknowledgement after the transfer";

  // SIGTERM to the leader (a rolling restart): it stops, hands over, exits 0; a follower
  // leads before any election timeout (1-2 s) could have passed.
  ASSERT_TRUE(group_.AwaitReady(first, true, absl::Seconds(10))) << "the restarted replica did not catch up";
  absl::StatusOr<int> stopped = group_.Terminate(named);
  const absl::Time exited = absl::Now();
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(*stopped, 0);
  const int next = group_.Leader(absl::Seconds(10));
  const absl::Duration took = absl::Now() - exited;
  ASSERT_GT(next, 0);
  EXPECT_NE(next, named);
  std::cout << "replica " << next << " serves " << took << " after leader " << named << " exited on SIGTERM"
            << std::endl;
  EXPECT_LT(took, absl::Milliseconds(900)) << "as slow as an election timeout: was leadership handed over?";
  group_.Start(named, {1, 2, 3}, false);
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10)));

  // Removing the leader hands leadership over first, then the new leader removes it.
  absl::StatusOr<Exited> removed =
      RunToExit(BinaryPath("services/cli/cohortctl"), {server, "replicas", "remove", absl::StrCat(next)});
  ASSERT_TRUE(removed.ok()) << removed.status();
  ASSERT_EQ(removed->exit_code, 0) << removed->stderr_text;
  std::set<int> rest = {1, 2, 3};
  rest.erase(next);
  EXPECT_EQ(group_.Voters(), rest);
  absl::StatusOr<int> removed_exit = group_.AwaitExit(next, absl::Seconds(10));
  ASSERT_TRUE(removed_exit.ok()) << removed_exit.status();
  ASSERT_TRUE(load.AwaitMore(3, absl::Seconds(10))) << "the group stopped serving after removing its leader";
  const int last = group_.Leader(absl::Seconds(10));
  ASSERT_TRUE(rest.count(last)) << last;
  load.Stop();
  std::cout << "acknowledged " << load.acknowledged().size() << " jobs" << std::endl;
  ExpectEveryJobExists(load.acknowledged());
  ExpectEqualStores(last, 2);
}

}  // namespace
}  // namespace cohort::testing
