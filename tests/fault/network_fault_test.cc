// Network faults between the real services, injected by a FaultProxy on 127.0.0.1:
// executor <-> broker and scheduler <-> broker, each through a partition, a stall
// (and SIGSTOP of the executor), a slow link, a cut mid-stream and a stream that loses
// bytes. Every test ends by checking the invariants (fault_cluster.h): nothing
// acknowledged lost, every job terminal, no attempt run twice, repeats only with a
// higher attempt, and exactly one run wherever executor.proto promises the lease is
// kept.
#include <signal.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fault/fault_cluster.h"
#include "tests/testing/fault_proxy.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

// How long a fault lasts. A fault's duration is the scenario itself, not a wait for
// an event, so it is a sleep.
void Hold(absl::Duration d) { std::this_thread::sleep_for(absl::ToChronoNanoseconds(d)); }

class NetworkFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), BrokerArgs(dir_.Path("broker")));
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    stub_ = BrokerStub(broker_->grpc_address());
    auto proxy = FaultProxy::Start(broker_->grpc_address());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
  }

  // An executor; through the proxy unless `direct`.
  std::unique_ptr<ServiceProcess> StartExecutor(const std::string& id, int capacity, bool direct = false) {
    auto started = ServiceProcess::Start(
        BinaryPath("services/executor/cohort-executor"),
        ExecutorArgs(direct ? broker_->grpc_address() : proxy_->address(), id, capacity));
    EXPECT_TRUE(started.ok()) << started.status();
    return started.ok() ? std::move(*started) : nullptr;
  }

  // The scheduler, talking to the broker through the proxy.
  void StartScheduler() {
    auto started = ServiceProcess::Start(BinaryPath("services/scheduler/cohort-scheduler"),
                                         {"--broker=" + proxy_->address(), "--listen=127.0.0.1:0",
                                          "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.Path("scheduler")});
    ASSERT_TRUE(started.ok()) << started.status();
    scheduler_ = std::move(*started);
  }

  // `n` jobs running `run_for`, submitted and seen RUNNING.
  std::vector<std::string> SubmitRunning(int n, absl::Duration run_for) {
    std::vector<cohort::v1::JobSpec> specs(n, log_.Job(run_for));
    std::vector<std::string> ids = SubmitAll(*stub_, specs);
    EXPECT_TRUE(AwaitAllRunning(*stub_, ids)) << "the jobs never all ran";
    return ids;
  }

  // `n` jobs that the scheduler must release, due over the next `spread`.
  std::vector<std::string> SubmitDelayed(int n, absl::Duration spread) {
    std::vector<cohort::v1::JobSpec> specs;
    for (int i = 0; i < n; ++i) {
      cohort::v1::JobSpec s = log_.Job(absl::Milliseconds(50));
      const absl::Duration delay = spread * (i + 1) / n;
      s.mutable_delay()->set_seconds(absl::ToInt64Seconds(delay));
      s.mutable_delay()->set_nanos(
          static_cast<int32_t>(absl::ToInt64Nanoseconds(delay - absl::Seconds(absl::ToInt64Seconds(delay)))));
      specs.push_back(s);
    }
    return SubmitAll(*stub_, specs);
  }

  TempDir dir_{"network-fault"};
  RunLog log_{dir_.Path("runs")};
  std::unique_ptr<ServiceProcess> broker_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<ServiceProcess> scheduler_;
};

// --- executor <-> broker ---

TEST_F(NetworkFaultTest, ExecutorLinkStalledForLessThanTheLeaseCostsNoAttempt) {
  auto executor = StartExecutor("stalled", 8);
  std::vector<std::string> ids = SubmitRunning(8, absl::Seconds(2));
  proxy_->Stall();
  Hold(kLease / 2);
  proxy_->Heal();
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

TEST_F(NetworkFaultTest, ExecutorStoppedBySigstopForLessThanTheLeaseCostsNoAttempt) {
  auto executor = StartExecutor("sigstopped", 8);
  std::vector<std::string> ids = SubmitRunning(8, absl::Seconds(2));
  ASSERT_EQ(kill(executor->pid(), SIGSTOP), 0);
  Hold(kLease / 2);
  ASSERT_EQ(kill(executor->pid(), SIGCONT), 0);
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

// Past the lease, the broker takes the attempts back even though the stream never
// broke; when the link heals, the executor's completions of the old attempts are
// fenced off and the next attempts decide.
TEST_F(NetworkFaultTest, ExecutorLinkStalledPastTheLeaseRunsTheNextAttemptAndFencesTheOld) {
  auto executor = StartExecutor("stalled-long", 4);
  std::vector<std::string> ids = SubmitRunning(4, absl::Milliseconds(500));
  proxy_->Stall();
  Hold(kLease + absl::Seconds(1));
  proxy_->Heal();
  CheckInvariants(*stub_, ids, log_, {});
  for (const std::string& id : ids) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Deadline(std::chrono::seconds(10));
    ASSERT_TRUE(stub_->GetJob(ctx.get(), req, &resp).ok());
    EXPECT_GE(resp.job().attempt(), 2) << "the lease ran out during the stall: " << resp.job().ShortDebugString();
  }
}

// The broker itself paused (a stop-the-world stall of the process): the heartbeats wait
// in its socket, and a pause shorter than the lease costs no attempt.
TEST_F(NetworkFaultTest, BrokerStoppedBySigstopForLessThanTheLeaseCostsNoAttempt) {
  auto executor = StartExecutor("broker-paused", 8);
  std::vector<std::string> ids = SubmitRunning(8, absl::Seconds(2));
  ASSERT_EQ(kill(broker_->pid(), SIGSTOP), 0);
  Hold(kLease / 2);
  ASSERT_EQ(kill(broker_->pid(), SIGCONT), 0);
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

TEST_F(NetworkFaultTest, ExecutorOnASlowLinkRunsEveryJobOnce) {
  proxy_->SetDelay(absl::Milliseconds(100));
  auto executor = StartExecutor("slow-link", 4);
  std::vector<cohort::v1::JobSpec> specs(24, log_.Job(absl::Milliseconds(100)));
  std::vector<std::string> ids = SubmitAll(*stub_, specs);
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

// executor.proto: "When a stream breaks, its attempts keep their leases until they run
// out: an executor that reconnects in time and lists them in Hello keeps them".
TEST_F(NetworkFaultTest, ExecutorLinkCutMidStreamKeepsTheRunningAttempts) {
  auto executor = StartExecutor("cut", 8);
  std::vector<std::string> ids = SubmitRunning(8, absl::Seconds(2));
  proxy_->Cut();
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
  EXPECT_GE(proxy_->accepted(), 2) << "the executor never reconnected";
}

// A partition longer than the lease: the broker takes the attempts back and another
// executor runs them with the next attempt number; when the partition heals, the first
// executor's late completions are fenced off.
TEST_F(NetworkFaultTest, ExecutorPartitionedPastTheLeaseLosesItsAttemptsToTheNextAttempt) {
  auto cut_off = StartExecutor("partitioned", 4);
  std::vector<std::string> ids = SubmitRunning(4, absl::Seconds(1));
  proxy_->Partition();
  auto other = StartExecutor("reachable", 4, /*direct=*/true);
  {
    // Every job is run again, by the reachable executor, before the partition heals.
    cohort::v1::WaitRequest req;
    for (const auto& id : ids) req.add_job_ids(id);
    req.mutable_timeout()->set_seconds(30);
    cohort::v1::WaitResponse resp;
    auto ctx = Deadline(std::chrono::seconds(40));
    ASSERT_TRUE(stub_->Wait(ctx.get(), req, &resp).ok());
    ASSERT_EQ(resp.pending_size(), 0);
  }
  proxy_->Heal();
  CheckInvariants(*stub_, ids, log_, {});
  for (const std::string& id : ids) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Deadline(std::chrono::seconds(10));
    ASSERT_TRUE(stub_->GetJob(ctx.get(), req, &resp).ok());
    EXPECT_GE(resp.job().attempt(), 2) << resp.job().ShortDebugString();
    EXPECT_EQ(resp.job().executor_id(), "reachable") << resp.job().ShortDebugString();
  }
}

// A stream that silently loses bytes (a middlebox gone mad, a half-dead peer) may never
// recover on its own. Where gRPC's length prefixes desynchronise, the broker falls
// silent and the executor's watchdog notices 3 silent heartbeat intervals (here
// 900 ms); where whole HTTP/2 frames vanish, the stream stays alive but the two sides
// disagree about credit and attempts (a lost Complete took its credit with it), which
// the message numbers both sides check (executor.proto, seq) catch at the next
// message. Either way the executor redials and lists its running attempts in Hello;
// the work must still end, each attempt run at most once.
TEST_F(NetworkFaultTest, ExecutorLinkThatLosesBytesRecoversAndEveryJobEnds) {
  auto executor = StartExecutor("lossy", 4);
  std::vector<std::string> ids = SubmitRunning(4, absl::Seconds(1));
  proxy_->Drop();
  Hold(absl::Milliseconds(500));
  proxy_->Heal();
  std::vector<cohort::v1::JobSpec> more(4, log_.Job(absl::Milliseconds(100)));
  std::vector<std::string> later = SubmitAll(*stub_, more);
  ids.insert(ids.end(), later.begin(), later.end());
  CheckInvariants(*stub_, ids, log_, {}, absl::Seconds(30));
}

// A connection left half-open (the broker's node died, or a NAT forgot the flow: no
// FIN, no RST, just silence) while new connections work: the executor's keepalive
// pings go unanswered, it redials, and jobs submitted after the fault run, each
// attempt once, within seconds rather than after TCP's retransmission timeout.
TEST_F(NetworkFaultTest, ExecutorOnAHalfOpenConnectionNoticesByKeepaliveAndRedials) {
  std::vector<std::string> args = ExecutorArgs(proxy_->address(), "half-open", 4);
  args.push_back("--broker-keepalive=1s");
  auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), args);
  ASSERT_TRUE(started.ok()) << started.status();
  std::vector<std::string> ids = SubmitRunning(2, absl::Milliseconds(100));
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
  proxy_->Blackhole();
  std::vector<cohort::v1::JobSpec> more(4, log_.Job(absl::Milliseconds(100)));
  std::vector<std::string> later = SubmitAll(*stub_, more);
  // Far below the ~15 minutes TCP would take, and below the broker's own server-side
  // keepalive (40 s): only the executor's pings can have noticed.
  CheckInvariants(*stub_, later, log_, {.exactly_once = true}, absl::Seconds(20));
  EXPECT_GE(proxy_->accepted(), 2) << "the executor never redialled";
}

// --- scheduler <-> broker ---

TEST_F(NetworkFaultTest, SchedulerLinkCutThenPartitionedStillReleasesEveryDelayedJobOnce) {
  auto executor = StartExecutor("direct", 16, /*direct=*/true);
  StartScheduler();
  std::vector<std::string> ids = SubmitDelayed(30, absl::Seconds(3));
  Hold(absl::Milliseconds(300));
  proxy_->Cut();
  Hold(absl::Milliseconds(300));
  proxy_->Partition();
  Hold(absl::Seconds(2));
  proxy_->Heal();
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

TEST_F(NetworkFaultTest, SchedulerLinkStalledThenSlowStillReleasesEveryDelayedJobOnce) {
  auto executor = StartExecutor("direct", 16, /*direct=*/true);
  StartScheduler();
  std::vector<std::string> ids = SubmitDelayed(30, absl::Seconds(3));
  Hold(absl::Milliseconds(500));
  proxy_->Stall();
  Hold(absl::Seconds(2));
  proxy_->SetDelay(absl::Milliseconds(100));
  proxy_->Heal();
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

TEST_F(NetworkFaultTest, SchedulerStoppedBySigstopStillReleasesEveryDelayedJobOnce) {
  auto executor = StartExecutor("direct", 16, /*direct=*/true);
  StartScheduler();
  std::vector<std::string> ids = SubmitDelayed(30, absl::Seconds(3));
  ASSERT_EQ(kill(scheduler_->pid(), SIGSTOP), 0);
  Hold(absl::Seconds(2));
  ASSERT_EQ(kill(scheduler_->pid(), SIGCONT), 0);
  CheckInvariants(*stub_, ids, log_, {.exactly_once = true});
}

}  // namespace
}  // namespace cohort::testing
