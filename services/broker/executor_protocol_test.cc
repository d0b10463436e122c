// The Connect protocol on the broker's engine (manual clock, in-memory store): credit
// on Complete (Complete.credit, Welcome.complete_carries_credit) and the answer to
// every Heartbeat that executors' watchdogs rely on.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using cohort::v1::ExecutorMessage;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

ExecutorMessage CompleteWithCredit(const std::string& id, int attempt, int credit) {
  ExecutorMessage m = testing::Complete(id, attempt, "ok");
  m.mutable_complete()->set_credit(credit);
  return m;
}

ExecutorMessage Heartbeat(const std::string& job_id = "", int attempt = 0) {
  ExecutorMessage m;
  m.mutable_heartbeat();
  if (!job_id.empty()) {
    cohort::v1::AttemptRef* ref = m.mutable_heartbeat()->add_running();
    ref->set_job_id(job_id);
    ref->set_attempt(attempt);
  }
  return m;
}

// Commits the engine has made (cohort_broker_commit_seconds' sample count).
std::uint64_t Commits(prometheus::Registry& registry) {
  for (const auto& family : registry.Collect()) {
    if (family.name == "cohort_broker_commit_seconds") return family.metric.at(0).histogram.sample_count;
  }
  return 0;
}

using ExecutorProtocolTest = testing::EngineTest;

TEST_F(ExecutorProtocolTest, WelcomeSaysTheBrokerTakesCreditOnComplete) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    EXPECT_TRUE(e.Attach(Hello("x", 1).hello(), &exec).ok());
    EXPECT_TRUE(exec.messages.at(0).welcome().complete_carries_credit());
    co_return;
  });
}

TEST_F(ExecutorProtocolTest, ACompletionCarryingCreditGetsTheNextJobInTheSameCommit) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);
    const std::uint64_t before = Commits(registry_);
    EXPECT_TRUE(e.OnExecutorMessage(s, CompleteWithCredit((*ids)[0], 1, 1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    const auto assigns = exec.Assigns();
    EXPECT_EQ(assigns.size(), 2u);
    if (assigns.size() == 2) EXPECT_EQ(assigns[1].assign().job().id(), (*ids)[1]);
    // The completion and the next assignment are one durable commit.
    EXPECT_EQ(Commits(registry_) - before, 1u);
    // The capacity still holds: credit on Complete never exceeds it.
    EXPECT_TRUE(e.OnExecutorMessage(s, CompleteWithCredit((*ids)[1], 1, 5)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 3u);
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 0);
  });
}

TEST_F(ExecutorProtocolTest, AFencedCompletionStillReturnsItsCredit) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);
    // A completion for an attempt that is not current (a wrong number): fenced, and the
    // job keeps running. Its credit is granted all the same, within the capacity: here
    // the slot is still taken, so there is no room.
    EXPECT_TRUE(e.OnExecutorMessage(s, CompleteWithCredit((*ids)[0], 7, 1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 0);  // capacity 1, one running
    EXPECT_TRUE(e.OnExecutorMessage(s, CompleteWithCredit((*ids)[0], 1, 1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(exec.Assigns().size(), 2u);
  });
}

// executor.proto: an executor that hears nothing for 3 heartbeat intervals redials, so
// an idle executor's empty heartbeats must be answered too.
TEST_F(ExecutorProtocolTest, EveryHeartbeatIsAnsweredEvenOneListingNoAttempts) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("idle", 1).hello(), &exec);
    for (int i = 0; i < 3; ++i) {
      exec.messages.clear();
      EXPECT_TRUE(e.OnExecutorMessage(s, Heartbeat()).ok());
      EXPECT_EQ(exec.messages.size(), 1u);
      if (exec.messages.size() != 1) break;
      EXPECT_TRUE(exec.messages[0].has_lease_extended()) << exec.messages[0].ShortDebugString();
      EXPECT_EQ(exec.messages[0].lease_extended().attempts_size(), 0);
      EXPECT_GT(exec.messages[0].lease_extended().lease().seconds(), 0);
    }
    co_return;
  });
}

TEST_F(ExecutorProtocolTest, AHeartbeatListingOnlyOrphansGetsTheirCancelsAndAnEmptyLeaseExtended) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("orphans", 1).hello(), &exec);
    exec.messages.clear();
    EXPECT_TRUE(e.OnExecutorMessage(s, Heartbeat("job-unknown", 1)).ok());
    EXPECT_EQ(exec.messages.size(), 2u);
    if (exec.messages.size() != 2) co_return;
    EXPECT_EQ(exec.messages[0].cancel().job_id(), "job-unknown");
    EXPECT_TRUE(exec.messages[1].has_lease_extended());
    EXPECT_EQ(exec.messages[1].lease_extended().attempts_size(), 0);
    co_return;
  });
}

}  // namespace
}  // namespace cohort::broker
