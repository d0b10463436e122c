// The Connect protocol on the broker's engine (manual clock, in-memory store): credit
// on Complete (Complete.credit, Welcome.complete_carries_credit), the answer to
// every Heartbeat that executors' watchdogs rely on, prefetch (Hello.prefetch) and
// batched messages (CompleteBatch, AssignBatch).
#include <cstdint>
#include <limits>
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

// Counts of one metric family's first sample (counter or histogram samples).
double MetricValue(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name) return family.metric.at(0).counter.value;
  }
  return 0;
}

ExecutorMessage HelloWith(const std::string& id, int capacity, int prefetch, bool assign_batches) {
  ExecutorMessage m = Hello(id, capacity);
  m.mutable_hello()->set_prefetch(prefetch);
  m.mutable_hello()->set_accepts_assign_batches(assign_batches);
  return m;
}

// Every Assign the channel got, batched or not, in order.
std::vector<cohort::v1::BrokerMessage::Assign> AllAssigns(const FakeChannel& ch) {
  std::vector<cohort::v1::BrokerMessage::Assign> out;
  for (const auto& m : ch.messages) {
    if (m.has_assign()) out.push_back(m.assign());
    for (const auto& a : m.assigns().assigns()) out.push_back(a);
  }
  return out;
}

ExecutorMessage Completes(const std::vector<ExecutorMessage>& singles) {
  ExecutorMessage m;
  for (const ExecutorMessage& one : singles) *m.mutable_completes()->add_completes() = one.complete();
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
    if (assigns.size() == 2) {
      EXPECT_EQ(assigns[1].assign().job().id(), (*ids)[1]);
    }
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

TEST_F(ExecutorProtocolTest, WelcomeSaysTheBrokerTakesCompleteBatches) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    EXPECT_TRUE(e.Attach(Hello("x", 1).hello(), &exec).ok());
    EXPECT_TRUE(exec.messages.at(0).welcome().accepts_complete_batches());
    co_return;
  });
}

// Hello.prefetch is a bound that may exceed the capacity (an adaptive executor asks for
// less), up to the capacity limit (10000 by default).
TEST_F(ExecutorProtocolTest, APrefetchOutsideZeroToTheCapacityLimitIsRefusedWithTheRange) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    for (const int prefetch : {-1, 10'001, 2'000'000'000}) {
      absl::StatusOr<std::uint64_t> s = e.Attach(HelloWith("x", 2, prefetch, false).hello(), &exec);
      EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << prefetch;
      EXPECT_EQ(s.status().message(), "hello.prefetch must be in 0..10000 (the capacity limit)") << prefetch;
    }
    EXPECT_EQ(e.ListExecutors().executors_size(), 0);
    EXPECT_TRUE(e.Attach(HelloWith("x", 2, 256, false).hello(), &exec).ok());
    EXPECT_TRUE(e.Attach(HelloWith("y", 2, 10'000, false).hello(), &exec).ok());  // lowered to 9998
    co_return;
  });
}

TEST_F(ExecutorProtocolTest, APrefetchBeyondTheCapacityLetsAnExecutorHoldThatMany) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<cohort::v1::JobSpec> specs(40, Spec("q"));
    auto ids = co_await e.Submit(specs, false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 30, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1000)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 32u);  // capacity 2 + prefetch 30
    EXPECT_EQ(e.ListExecutors().executors(0).running(), 32);
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 0);
  });
}

// executor.proto, CreditGrant: an executor that shrinks its prefetch withdraws unused
// credit; the broker clamps at zero and never takes back what it assigned.
TEST_F(ExecutorProtocolTest, ANegativeGrantWithdrawsOnlyUnusedCredit) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 8, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(10)).ok());
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 10);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(-7)).ok());
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 3);
    std::vector<cohort::v1::JobSpec> specs(5, Spec("q"));
    auto ids = co_await e.Submit(specs, false);
    EXPECT_TRUE(ids.ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 3u);  // the credit left, not the 10 first granted
    // Withdrawing more than is left (and the most negative int32) leaves none, and
    // the three assignments stand.
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(-5)).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(std::numeric_limits<std::int32_t>::min())).ok());
    co_await Settle();
    const cohort::v1::ExecutorInfo info = e.ListExecutors().executors(0);
    EXPECT_EQ(info.credits(), 0);
    EXPECT_EQ(info.running(), 3);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(e.GetJob((*ids)[i])->state(), cohort::v1::JOB_STATE_RUNNING) << i;
    // A completion carrying a negative credit is taken, and its slot's credit withdrawn.
    ExecutorMessage done = CompleteWithCredit((*ids)[0], 1, -1);
    EXPECT_TRUE(e.OnExecutorMessage(s, done).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(e.ListExecutors().executors(0).credits(), 0);
    EXPECT_EQ(AllAssigns(exec).size(), 3u);
    // Credit granted again is used at once.
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 5u);
  });
}

TEST_F(ExecutorProtocolTest, PrefetchLetsAnExecutorHoldCapacityPlusPrefetchAttemptsAndNoMore) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q"), Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 2, false).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(100)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 4u);
    const cohort::v1::ExecutorInfo info = e.ListExecutors().executors(0);
    EXPECT_EQ(info.running(), 4);  // held attempts, prefetched or not (executor.proto)
    EXPECT_EQ(info.credits(), 0);
  });
}

TEST_F(ExecutorProtocolTest, PrefetchIsLoweredToKeepHeldAttemptsWithinTheCapacityLimit) {
  options_.max_executor_capacity = 4;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<cohort::v1::JobSpec> specs(8, Spec("q"));
    auto ids = co_await e.Submit(specs, false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 3, 3, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(100)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 4u);
  });
}

TEST_F(ExecutorProtocolTest, PrefetchedAttemptsCountTowardTheQueuesMaxConcurrency) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    cohort::v1::CreateQueueRequest create;
    create.set_queue("q");
    create.mutable_limits()->set_max_concurrency(3);
    EXPECT_TRUE((co_await e.CreateQueue(create)).ok());
    EXPECT_TRUE((co_await e.PauseQueue("q", false)).ok());
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 2, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(4)).ok());
    co_await Settle();
    const auto assigns = AllAssigns(exec);
    EXPECT_EQ(assigns.size(), 3u);  // 2 running + 1 prefetched: the queue's limit of 3
    // The one it finishes frees a place in the queue: the next goes out.
    if (!assigns.empty()) {
      EXPECT_TRUE(e.OnExecutorMessage(s, CompleteWithCredit(assigns[0].job().id(), 1, 1)).ok());
    }
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 4u);
  });
}

TEST_F(ExecutorProtocolTest, AnExecutorThatDoesNotReadBatchesGetsOneAssignPerMessage) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("old", 3).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(3)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 3u);
    for (const auto& m : exec.messages) EXPECT_FALSE(m.has_assigns());
  });
}

TEST_F(ExecutorProtocolTest, ABatchOfCompletionsIsOneCommitWithTheAssignsItsCreditsEnableInOneMessage) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<cohort::v1::JobSpec> specs(8, Spec("q"));
    auto ids = co_await e.Submit(specs, false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 4, 0, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(4)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 4u);
    if (AllAssigns(exec).size() != 4u) co_return;
    EXPECT_EQ(exec.messages.back().assigns().assigns_size(), 4);  // one message for the turn
    const std::uint64_t before = Commits(registry_);
    const std::size_t messages_before = exec.messages.size();
    std::vector<ExecutorMessage> done;
    for (int i = 0; i < 4; ++i) done.push_back(CompleteWithCredit((*ids)[i], 1, 1));
    EXPECT_TRUE(e.OnExecutorMessage(s, Completes(done)).ok());
    co_await Settle();
    for (int i = 0; i < 4; ++i) EXPECT_EQ(e.GetJob((*ids)[i])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(Commits(registry_) - before, 1u);
    EXPECT_EQ(exec.messages.size(), messages_before + 1);
    if (exec.messages.size() != messages_before + 1) co_return;
    const auto& next = exec.messages.back().assigns().assigns();
    EXPECT_EQ(next.size(), 4);
    if (next.size() != 4) co_return;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(next[i].job().id(), (*ids)[4 + i]);  // in queue order
  });
}

TEST_F(ExecutorProtocolTest, InABatchADuplicateOrStaleCompletionIsIgnoredAndTheFirstResultStands) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 0, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 2u);
    if (AllAssigns(exec).size() != 2u) co_return;
    const double stale_before = MetricValue(registry_, "cohort_broker_stale_completions_total");
    std::vector<ExecutorMessage> done = {testing::Complete((*ids)[0], 1, "first"),
                                         testing::Complete((*ids)[0], 1, "second"),
                                         testing::Complete((*ids)[1], 9, "wrong attempt"),
                                         testing::Complete((*ids)[1], 1, "ok")};
    EXPECT_TRUE(e.OnExecutorMessage(s, Completes(done)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->result(), "first");
    EXPECT_EQ(e.GetJob((*ids)[1])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(e.GetJob((*ids)[1])->result(), "ok");
    EXPECT_EQ(MetricValue(registry_, "cohort_broker_stale_completions_total") - stale_before, 2);
  });
}

TEST_F(ExecutorProtocolTest, AnEmptyOrOversizedBatchOfCompletionsIsInvalid) {
  options_.max_executor_capacity = 2;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    ExecutorMessage empty;
    empty.mutable_completes();
    EXPECT_EQ(e.OnExecutorMessage(s, empty).code(), absl::StatusCode::kInvalidArgument);
    std::vector<ExecutorMessage> five(5, testing::Complete("job-unknown", 1, "r"));
    EXPECT_EQ(e.OnExecutorMessage(s, Completes(five)).code(), absl::StatusCode::kInvalidArgument);
    co_return;
  });
}

TEST_F(ExecutorProtocolTest, PrefetchedAttemptsComeBackUnspentWhenTheExecutorClosesGracefully) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 2, 1, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(3)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 3u);
    if (AllAssigns(exec).size() != 3u) co_return;
    // It ran the first; a drain began before it started the other two (one of them
    // prefetched), so it half-closes holding them, and they go back.
    EXPECT_TRUE(e.OnExecutorMessage(s, testing::Complete((*ids)[0], 1, "ok")).ok());
    e.Detach(s, /*graceful=*/true);
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[0])->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    for (int i = 1; i < 3; ++i) {
      const cohort::v1::Job job = *e.GetJob((*ids)[i]);
      EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
      EXPECT_EQ(job.attempt(), 0);  // not used up
      EXPECT_EQ(job.attempts_size(), 0);
    }
    // Another executor gets them as first attempts.
    FakeChannel other;
    std::uint64_t t = *e.Attach(Hello("y", 2).hello(), &other);
    EXPECT_TRUE(e.OnExecutorMessage(t, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(other.Assigns().size(), 2u);
    if (other.Assigns().size() != 2u) co_return;
    for (const auto& m : other.Assigns()) EXPECT_EQ(m.assign().attempt(), 1);
  });
}

TEST_F(ExecutorProtocolTest, PrefetchedAttemptsStayLeasedAcrossABrokenStreamAndComeBackWhenTheLeaseRunsOut) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE(ids.ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(HelloWith("x", 1, 1, true).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(AllAssigns(exec).size(), 2u);
    if (AllAssigns(exec).size() != 2u) co_return;
    e.Detach(s);  // broken: leases run on
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[1])->state(), cohort::v1::JOB_STATE_RUNNING);
    // It reconnects listing both; it had run neither. It finishes the first, then
    // starts and finishes the prefetched one on the new stream.
    ExecutorMessage hello = HelloWith("x", 1, 1, true);
    for (const std::string& id : *ids) {
      cohort::v1::AttemptRef* ref = hello.mutable_hello()->add_running();
      ref->set_job_id(id);
      ref->set_attempt(1);
    }
    FakeChannel again;
    std::uint64_t s2 = *e.Attach(hello.hello(), &again);
    for (const auto& m : again.messages) EXPECT_FALSE(m.has_cancel()) << m.ShortDebugString();
    EXPECT_TRUE(e.OnExecutorMessage(s2, testing::Complete((*ids)[0], 1, "a")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s2, testing::Complete((*ids)[1], 1, "b")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob((*ids)[1])->result(), "b");
    // A third job prefetched by an executor that never comes back: its lease runs out
    // and it is redelivered.
    cohort::v1::JobSpec retried = Spec("q");
    retried.set_max_attempts(3);
    auto more = co_await e.Submit(Batch(retried), false);
    EXPECT_TRUE(more.ok());
    EXPECT_TRUE(e.OnExecutorMessage(s2, Credit(2)).ok());
    co_await Settle();
    e.Detach(s2);
    co_await runtime::Sleep(std::chrono::seconds(11));  // the lease is 10 s (EngineTest)
    co_await Settle();
    const cohort::v1::Job lost = *e.GetJob((*more)[0]);
    EXPECT_EQ(lost.state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(lost.attempt(), 1);
  });
}

}  // namespace
}  // namespace cohort::broker
