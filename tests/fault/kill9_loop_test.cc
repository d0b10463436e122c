// kill -9 of the broker, the scheduler and the executor at random points, again and
// again, while a client submits continuously (half the jobs delayed, so the scheduler
// must release them). Each killed service is restarted on the same data directory
// (the broker on the same port). At the end: every acknowledged job exists, ends
// SUCCEEDED, ran at least once, and no attempt ran twice (a repeat only with a higher
// attempt number).
//
// The victims take turns (broker, scheduler, executor); the moment of each kill and the
// downtime are random. COHORT_KILL9_ROUNDS sets the number of kills (default 9: each
// service three times, the CI size); COHORT_FAULT_SEED fixes the random points (the seed used is printed).
// tools/soak.sh runs the long version.
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_cluster.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  int n = 0;
  return v != nullptr && absl::SimpleAtoi(v, &n) && n >= 0 ? n : fallback;
}

class Kill9LoopTest : public ::testing::Test {
 protected:
  void StartBroker() {
    std::vector<std::string> args = BrokerArgs(dir_.Path("broker"));
    if (!broker_port_.empty()) args[0] = "--listen=127.0.0.1:" + broker_port_;  // the address everyone knows
    auto started = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    broker_ = std::move(*started);
    const std::string& address = broker_->grpc_address();
    broker_port_ = address.substr(address.rfind(':') + 1);
  }
  void StartScheduler() {
    auto started = ServiceProcess::Start(BinaryPath("services/scheduler/cohort-scheduler"),
                                         {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                          "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.Path("scheduler")});
    ASSERT_TRUE(started.ok()) << started.status();
    scheduler_ = std::move(*started);
  }
  void StartExecutor() {
    auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"),
                                         ExecutorArgs(broker_->grpc_address(), "kill9-executor", 16));
    ASSERT_TRUE(started.ok()) << started.status();
    executor_ = std::move(*started);
  }

  TempDir dir_{"kill9-loop"};
  RunLog log_{dir_.Path("runs")};
  std::string broker_port_;
  std::unique_ptr<ServiceProcess> broker_;
  std::unique_ptr<ServiceProcess> scheduler_;
  std::unique_ptr<ServiceProcess> executor_;
};

TEST_F(Kill9LoopTest, EveryAcknowledgedJobEndsAndNoAttemptRunsTwiceAcrossKill9s) {
  const int rounds = EnvInt("COHORT_KILL9_ROUNDS", 9);
  const unsigned seed = static_cast<unsigned>(EnvInt("COHORT_FAULT_SEED", static_cast<int>(std::random_device()() >> 1)));
  std::cout << "kill -9 loop: " << rounds << " rounds, COHORT_FAULT_SEED=" << seed << std::endl;
  std::mt19937 random(seed);

  StartBroker();
  StartScheduler();
  StartExecutor();
  const std::string broker_address = broker_->grpc_address();

  // The client: batches of 4 (two due now, two delayed up to 500 ms), ~80 jobs/s.
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::thread client([&] {
    auto stub = BrokerStub(broker_address);
    std::mt19937 client_random(seed + 1);
    while (!stop) {
      std::vector<cohort::v1::JobSpec> specs;
      for (int i = 0; i < 4; ++i) {
        cohort::v1::JobSpec s = log_.Job(absl::Milliseconds(20), /*max_attempts=*/100);
        if (i >= 2) s.mutable_delay()->set_nanos(static_cast<int32_t>(client_random() % 500'000'000));
        specs.push_back(std::move(s));
      }
      cohort::v1::SubmitRequest req;
      for (const auto& s : specs) *req.add_jobs() = s;
      cohort::v1::SubmitResponse resp;
      auto ctx = Deadline(std::chrono::seconds(2));
      ctx->set_wait_for_ready(true);  // a broker restarting is waited for, up to the deadline
      if (stub->Submit(ctx.get(), req, &resp).ok()) {
        std::lock_guard<std::mutex> lock(mu);
        acknowledged.insert(acknowledged.end(), resp.job_ids().begin(), resp.job_ids().end());
      } else {
        ++refused;  // the broker is down: not acknowledged, so nothing is owed
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // pacing, not synchronisation
    }
  });

  const char* names[] = {"broker", "scheduler", "executor"};
  for (int round = 0; round < rounds; ++round) {
    // A random point 300..3000 ms into the round, and 0..500 ms down.
    const int point_ms = 300 + static_cast<int>(random() % 2700);
    const int down_ms = static_cast<int>(random() % 500);
    const int victim = round % 3;
    std::this_thread::sleep_for(std::chrono::milliseconds(point_ms));
    std::cout << "round " << round << ": kill -9 " << names[victim] << " after " << point_ms << " ms, down "
              << down_ms << " ms" << std::endl;
    auto down = [down_ms] { std::this_thread::sleep_for(std::chrono::milliseconds(down_ms)); };
    if (victim == 0) {
      ASSERT_TRUE(broker_->Kill9().ok());
      down();
      StartBroker();
      ASSERT_EQ(broker_->grpc_address(), broker_address) << "the broker came back on another port";
    } else if (victim == 1) {
      ASSERT_TRUE(scheduler_->Kill9().ok());
      down();
      StartScheduler();
    } else {
      ASSERT_TRUE(executor_->Kill9().ok());
      down();
      StartExecutor();
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  client.join();

  std::vector<std::string> ids;
  {
    std::lock_guard<std::mutex> lock(mu);
    ids = acknowledged;
  }
  std::cout << ids.size() << " jobs acknowledged, " << refused << " submits refused" << std::endl;
  ASSERT_GT(ids.size(), 0u);
  auto stub = BrokerStub(broker_address);
  CheckInvariants(*stub, ids, log_, {}, absl::Seconds(60));
  const auto runs = log_.Runs();
  size_t repeats = 0;
  for (const auto& [id, attempts] : runs) repeats += attempts.size() - 1;
  std::cout << runs.size() << " jobs ran, " << repeats << " runs were repeats after a lost lease" << std::endl;
}

}  // namespace
}  // namespace cohort::testing
