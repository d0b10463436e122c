// The broker's logic on a manual clock with an in-memory store: dispatch order,
// leases, fencing, cancellation, retries and recovery.
#include "services/broker/broker_engine.h"

#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/common/wire_time.h"
#include "libs/runtime/test_util.h"
#include "libs/store/mem_job_store.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using cohort::v1::Job;
using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Complete;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

// A Hello from an executor that reconnects with attempts still running.
ExecutorMessage HelloRunning(std::string id, int capacity, const std::string& job_id, int attempt) {
  ExecutorMessage m = Hello(std::move(id), capacity);
  cohort::v1::AttemptRef* ref = m.mutable_hello()->add_running();
  ref->set_job_id(job_id);
  ref->set_attempt(attempt);
  return m;
}

ExecutorMessage Heartbeat(const std::vector<std::pair<std::string, int>>& running) {
  ExecutorMessage m;
  m.mutable_heartbeat();
  for (const auto& [id, attempt] : running) {
    cohort::v1::AttemptRef* ref = m.mutable_heartbeat()->add_running();
    ref->set_job_id(id);
    ref->set_attempt(attempt);
  }
  return m;
}

// The Cancels `channel` received, as (job id, attempt).
std::vector<std::pair<std::string, int>> Cancels(const std::vector<BrokerMessage>& messages) {
  std::vector<std::pair<std::string, int>> out;
  for (const auto& m : messages) {
    if (m.has_cancel()) out.emplace_back(m.cancel().job_id(), m.cancel().attempt());
  }
  return out;
}

google::protobuf::Timestamp WallClockIn(absl::Duration d) { return common::ToProto(absl::Now() + d); }

using BrokerEngineTest = testing::EngineTest;

TEST_F(BrokerEngineTest, SubmittedJobIsAssignedToAnExecutorWithCreditAndCompletes) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("emails")), false);
    EXPECT_TRUE(ids.ok());
    std::string id = (*ids)[0];
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_QUEUED);
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x1", 4).hello(), &exec);
    EXPECT_TRUE(exec.messages[0].has_welcome());
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    auto assigns = exec.Assigns();
    EXPECT_EQ(assigns.size(), 1u);
    EXPECT_EQ(assigns[0].assign().job().id(), id);
    EXPECT_EQ(assigns[0].assign().attempt(), 1);
    EXPECT_EQ(assigns[0].assign().job().spec().payload(), "p");
    EXPECT_TRUE(e.OnExecutorMessage(session, Complete(id, 1, "done")).ok());
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(job.result(), "done");
    EXPECT_EQ(job.attempts_size(), 1);
  });
}

TEST_F(BrokerEngineTest, EventsCarryEachVersionOfTheJobWithoutPayloadAndResultWhileTheStoreKeepsThem) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    const std::string with_payload = (*co_await e.Submit(Batch(Spec("q", 0, "the payload")), false))[0];
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x1", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(session, Complete(with_payload, 1, "the result")).ok());
    co_await Settle();
    const std::string without_payload = (*co_await e.Submit(Batch(Spec("q", 0, "")), false))[0];
    EXPECT_TRUE((co_await e.DeleteJob(without_payload)).ok());

    const absl::StatusOr<Job> stored = co_await store_.GetJob(with_payload);
    EXPECT_TRUE(stored.ok()) << stored.status();
    if (!stored.ok()) co_return;
    EXPECT_EQ(stored->spec().payload(), "the payload");
    EXPECT_EQ(stored->result(), "the result");
    auto events = co_await store_.ReadEvents(0, 100, 1 << 20);
    EXPECT_TRUE(events.ok()) << events.status();
    if (!events.ok()) co_return;
    std::vector<cohort::v1::JobState> states;
    for (const cohort::v1::JobEvent& event : *events) {
      EXPECT_EQ(event.job().id(), event.job_id());
      EXPECT_EQ(event.job().sequence(), event.sequence()) << "each event carries the version it made";
      EXPECT_TRUE(event.job().spec().payload().empty()) << event.DebugString();
      EXPECT_FALSE(event.job().has_result()) << event.DebugString();
      if (event.job_id() == with_payload) states.push_back(event.to_state());
    }
    EXPECT_EQ(states, (std::vector<cohort::v1::JobState>{cohort::v1::JOB_STATE_QUEUED, cohort::v1::JOB_STATE_RUNNING,
                                                         cohort::v1::JOB_STATE_SUCCEEDED}));
    // The last event's job is the stored job but for its payload and result.
    Job summary = *stored;
    summary.mutable_spec()->clear_payload();
    summary.clear_result();
    const cohort::v1::JobEvent* ended = nullptr;
    for (const cohort::v1::JobEvent& event : *events) {
      if (event.job_id() == with_payload) ended = &event;
    }
    EXPECT_EQ(ended->job().SerializeAsString(), summary.SerializeAsString());
    EXPECT_EQ(events->back().reason(), cohort::v1::TRANSITION_REASON_DELETED);
    EXPECT_EQ(events->back().job().id(), without_payload);
  });
}

TEST_F(BrokerEngineTest, TheSubmittedCounterCountsEachNewJobOnceUnderItsQueue) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec keyed = Spec("q1");
    keyed.set_idempotency_key("k");
    EXPECT_TRUE((co_await e.Submit(Batch(Spec("q1"), Spec("q2"), keyed, Spec("q1"), Spec("q2")), false)).ok());
    EXPECT_TRUE((co_await e.Submit(Batch(keyed, Spec("q2")), false)).ok());  // the key's job exists: not counted
    std::map<std::string, double> submitted;
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != "cohort_broker_jobs_submitted_total") continue;
      for (const prometheus::ClientMetric& metric : family.metric) submitted[metric.label.at(0).value] = metric.counter.value;
    }
    EXPECT_EQ(submitted, (std::map<std::string, double>{{"q1", 3}, {"q2", 3}}));
  });
}

TEST_F(BrokerEngineTest, SubmitIsAllOrNothingAndNamesTheBadField) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto result = co_await e.Submit(Batch(Spec("good"), Spec("Bad Queue")), false);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find("jobs[1].queue"), std::string::npos) << result.status();
    cohort::v1::ListJobsRequest all;
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 0);
    JobSpec unknown_kind = Spec("q");
    unknown_kind.set_kind("builtin.teleport");
    auto r2 = co_await e.Submit(Batch(unknown_kind), false);
    EXPECT_EQ(r2.status().code(), absl::StatusCode::kInvalidArgument);
    JobSpec big = Spec("q", 0, std::string((1 << 20) + 1, 'x'));
    auto r3 = co_await e.Submit(Batch(big), false);
    EXPECT_EQ(r3.status().code(), absl::StatusCode::kInvalidArgument);
    JobSpec orphan = Spec("q");
    orphan.add_depends_on("job-nope");
    auto r4 = co_await e.Submit(Batch(orphan), false);
    EXPECT_EQ(r4.status().code(), absl::StatusCode::kNotFound);
    auto r5 = co_await e.Submit(Batch(), false);
    EXPECT_EQ(r5.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 0);
  });
}

TEST_F(BrokerEngineTest, DelayedJobInANewQueueWaitsPending) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec later = Spec("never-queued-yet");
    later.mutable_delay()->set_seconds(60);
    std::string id = (*co_await e.Submit(Batch(later), false))[0];
    co_await Settle();  // its commit refreshes the gauges of the queues it touched
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_PENDING);
  });
}

TEST_F(BrokerEngineTest, IdempotencyKeyReturnsTheExistingJob) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_idempotency_key("order-17");
    auto first = co_await e.Submit(Batch(s), false);
    auto second = co_await e.Submit(Batch(s), false);
    EXPECT_EQ((*first)[0], (*second)[0]);
    cohort::v1::ListJobsRequest all;
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 1);
  });
}

TEST_F(BrokerEngineTest, HigherPriorityIsDispatchedFirstAndFifoWithinAPriority) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto ids = co_await e.Submit(Batch(Spec("q", 0), Spec("q", 5), Spec("q", 0), Spec("q", 5)), false);
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x1", 10).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(4)).ok());
    co_await Settle();
    std::vector<std::string> order;
    for (const auto& a : exec.Assigns()) order.push_back(a.assign().job().id());
    EXPECT_EQ(order, (std::vector<std::string>{(*ids)[1], (*ids)[3], (*ids)[0], (*ids)[2]}));
  });
}

TEST_F(BrokerEngineTest, ExecutorNeverGetsMoreAssignsThanCredits) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<JobSpec> specs(10, Spec("q"));
    co_await e.Submit(specs, false);
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x1", 2).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(100)).ok());  // capped at capacity
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 2u);
  });
}

TEST_F(BrokerEngineTest, ExpiredLeaseRequeuesTheJobForItsNextAttempt) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_max_attempts(3);
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    FakeChannel silent;
    std::uint64_t a = *e.Attach(Hello("silent", 1).hello(), &silent);
    EXPECT_TRUE(e.OnExecutorMessage(a, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(silent.Assigns().size(), 1u);
    co_await runtime::Sleep(11s);  // past the 10 s lease, no heartbeat
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(job.attempts(0).error().code(), "lease_expired");
    FakeChannel healthy;
    std::uint64_t b = *e.Attach(Hello("healthy", 1).hello(), &healthy);
    EXPECT_TRUE(e.OnExecutorMessage(b, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(healthy.Assigns().at(0).assign().attempt(), 2);
    // The first executor's late completion is fenced.
    EXPECT_TRUE(e.OnExecutorMessage(a, Complete(id, 1, "late")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_TRUE(e.OnExecutorMessage(b, Complete(id, 2, "ok")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->result(), "ok");
    EXPECT_EQ(ElapsedMs(), 11'000);
  });
}

TEST_F(BrokerEngineTest, HeartbeatsKeepALongJobLeased) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x1", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    for (int i = 0; i < 10; ++i) {  // 50 s of running, 5 s apart, lease 10 s
      co_await runtime::Sleep(5s);
      EXPECT_TRUE(e.OnExecutorMessage(s, Heartbeat({{id, 1}})).ok());
    }
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING) << e.GetJob(id)->DebugString();
    EXPECT_EQ(e.GetJob(id)->attempt(), 1);
  });
}

TEST_F(BrokerEngineTest, HeartbeatIsAnsweredWithLeaseExtendedForItsAttemptsAndCancelForOthers) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x1", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    exec.messages.clear();
    // Its own attempt, a stale attempt of the same job, and a job it never had.
    EXPECT_TRUE(e.OnExecutorMessage(s, Heartbeat({{id, 1}, {id, 7}, {"job-nope", 1}})).ok());
    int extended = 0;
    for (const BrokerMessage& m : exec.messages) {
      if (!m.has_lease_extended()) continue;
      ++extended;
      EXPECT_EQ(m.lease_extended().attempts_size(), 1);
      if (m.lease_extended().attempts_size() != 1) continue;
      EXPECT_EQ(m.lease_extended().attempts(0).job_id(), id);
      EXPECT_EQ(m.lease_extended().attempts(0).attempt(), 1);
      EXPECT_EQ(m.lease_extended().lease().seconds(), 10);
    }
    EXPECT_EQ(extended, 1);
    EXPECT_EQ(Cancels(exec.messages), (std::vector<std::pair<std::string, int>>{{id, 7}, {"job-nope", 1}}));
  });
}

TEST_F(BrokerEngineTest, HelloOrHeartbeatListingMoreAttemptsThanAnyCapacityIsRejected) {
  options_.max_executor_capacity = 4;
  WithEngine([](BrokerEngine& e) -> Task<void> {
    ExecutorMessage hello = Hello("x", 1);
    ExecutorMessage beat = Heartbeat({});
    for (int i = 0; i < 5; ++i) {
      *hello.mutable_hello()->add_running() = HelloRunning("x", 1, absl::StrCat("job-", i), 1).hello().running(0);
      *beat.mutable_heartbeat()->add_running() = hello.hello().running(i);
    }
    FakeChannel exec;
    EXPECT_EQ(e.Attach(hello.hello(), &exec).status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(exec.messages.empty());
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_EQ(e.OnExecutorMessage(s, beat).code(), absl::StatusCode::kInvalidArgument);
    co_return;
  });
}

TEST_F(BrokerEngineTest, BrokenStreamKeepsItsAttemptsLeasedAndAReconnectWithinTheLeaseKeepsThem) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_max_attempts(3);
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    FakeChannel first;
    std::uint64_t a = *e.Attach(Hello("x", 1).hello(), &first);
    EXPECT_TRUE(e.OnExecutorMessage(a, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(first.Assigns().size(), 1u);
    e.Detach(a);  // the network blips: the stream breaks
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING);
    co_await runtime::Sleep(6s);  // within the 10 s lease
    FakeChannel second;
    std::uint64_t b = *e.Attach(HelloRunning("x", 1, id, 1).hello(), &second);
    EXPECT_TRUE(Cancels(second.messages).empty());
    EXPECT_EQ(e.ListExecutors().executors(0).running(), 1);
    // The Hello renewed the lease: 8 s later (14 s after the Assign) it still holds.
    co_await runtime::Sleep(8s);
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_EQ(job.attempt(), 1);
    // The completion comes on the new stream and is accepted.
    EXPECT_TRUE(e.OnExecutorMessage(b, Complete(id, 1, "ran once")).ok());
    co_await Settle();
    job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(job.result(), "ran once");
    EXPECT_EQ(job.attempt(), 1);
    EXPECT_EQ(job.attempts_size(), 1);
    EXPECT_EQ(ElapsedMs(), 14'000);
  });
}

TEST_F(BrokerEngineTest, CompletionSentOnANewStreamWithoutAHelloListingIsAcceptedWithinTheLease) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel first;
    std::uint64_t a = *e.Attach(Hello("x", 1).hello(), &first);
    EXPECT_TRUE(e.OnExecutorMessage(a, Credit(1)).ok());
    co_await Settle();
    e.Detach(a);
    FakeChannel second;  // the attempt finished while disconnected, so Hello lists nothing
    std::uint64_t b = *e.Attach(Hello("x", 1).hello(), &second);
    EXPECT_TRUE(e.OnExecutorMessage(b, Complete(id, 1, "done offline")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(e.GetJob(id)->result(), "done offline");
  });
}

TEST_F(BrokerEngineTest, ReconnectAfterTheLeaseRanOutGetsCancelAndTheJobIsRedeliveredWithTheNextAttempt) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_max_attempts(3);
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    FakeChannel first;
    std::uint64_t a = *e.Attach(Hello("x", 1).hello(), &first);
    EXPECT_TRUE(e.OnExecutorMessage(a, Credit(1)).ok());
    co_await Settle();
    e.Detach(a);
    co_await runtime::Sleep(11s);  // past the 10 s lease
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(job.attempts(0).error().code(), "lease_expired");
    FakeChannel second;
    std::uint64_t b = *e.Attach(HelloRunning("x", 1, id, 1).hello(), &second);
    EXPECT_EQ(Cancels(second.messages), (std::vector<std::pair<std::string, int>>{{id, 1}}));
    EXPECT_TRUE(e.OnExecutorMessage(b, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(second.Assigns().size(), 1u);
    if (second.Assigns().size() != 1u) co_return;
    EXPECT_EQ(second.Assigns()[0].assign().attempt(), 2);
    // The old attempt's completion is fenced.
    EXPECT_TRUE(e.OnExecutorMessage(b, Complete(id, 1, "stale")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_EQ(e.GetJob(id)->attempt(), 2);
  });
}

TEST_F(BrokerEngineTest, DroppedStreamLosesItsJobsWhenTheirLeasesRunOutAndSpentAttemptsFail) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec twice = Spec("q");
    twice.set_max_attempts(2);
    std::string id = (*co_await e.Submit(Batch(twice), false))[0];
    for (int attempt = 1; attempt <= 2; ++attempt) {
      FakeChannel exec;
      std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
      EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
      co_await Settle();
      EXPECT_EQ(exec.Assigns().size(), 1u);
      if (exec.Assigns().size() != 1u) co_return;
      EXPECT_EQ(exec.Assigns()[0].assign().attempt(), attempt);
      e.Detach(s);
      co_await Settle();
      EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING);  // leased until it runs out
      co_await runtime::Sleep(11s);
      co_await Settle();
    }
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(job.error().code(), "lease_expired");
    EXPECT_EQ(job.attempts_size(), 2);
  });
}

TEST_F(BrokerEngineTest, PermanentFailuresFailTheJobAtOnceWithoutRetrying) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::vector<std::string> codes = {"not_allowed", "unknown_kind", "spawn_failed"};
    for (const std::string& code : codes) {
      JobSpec s = Spec("q");
      s.set_max_attempts(5);
      std::string id = (*co_await e.Submit(Batch(s), false))[0];
      FakeChannel exec;
      std::uint64_t session = *e.Attach(Hello("x-" + code, 1).hello(), &exec);
      EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
      co_await Settle();
      EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, 1, "no", code)).ok());
      co_await Settle();
      Job job = *e.GetJob(id);
      EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED) << code;
      EXPECT_EQ(job.error().code(), code);
      EXPECT_EQ(job.attempts_size(), 1) << code;
      EXPECT_EQ(job.attempts(0).error().code(), code);
      e.Detach(session, /*graceful=*/true);
    }
  });
}

TEST_F(BrokerEngineTest, RunningJobPastItsDeadlineFailsAndItsExecutorIsToldToStop) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_max_attempts(3);
    *s.mutable_deadline() = WallClockIn(absl::Seconds(30));
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);
    for (int i = 0; i < 5; ++i) {  // heartbeats keep the 10 s lease for 29 s
      co_await runtime::Sleep(5s);
      EXPECT_TRUE(e.OnExecutorMessage(session, Heartbeat({{id, 1}})).ok());
    }
    co_await runtime::Sleep(4s);
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING);
    co_await runtime::Sleep(2s);
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(job.error().code(), "deadline_exceeded");
    EXPECT_EQ(job.attempts(0).error().code(), "deadline_exceeded");
    EXPECT_EQ(Cancels(exec.messages), (std::vector<std::pair<std::string, int>>{{id, 1}}));
    EXPECT_EQ(exec.messages.back().cancel().reason(), "deadline exceeded");
    EXPECT_EQ(ElapsedMs(), 31'000);
    // The cancelled attempt's report is fenced; nothing is retried.
    EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, 1, "killed", "cancelled")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(e.GetJob(id)->attempts_size(), 1);
    EXPECT_EQ(e.ListQueues().queues(0).running(), 0);
  });
}

TEST_F(BrokerEngineTest, QueuedAndPendingJobsPastTheirDeadlineFailWithoutRunning) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec queued = Spec("q");
    *queued.mutable_deadline() = WallClockIn(absl::Seconds(30));
    JobSpec pending = Spec("q");
    pending.mutable_delay()->set_seconds(60);
    *pending.mutable_deadline() = WallClockIn(absl::Seconds(30));
    auto ids = *co_await e.Submit(Batch(queued, pending), false);
    co_await runtime::Sleep(31s);
    co_await Settle();
    for (const std::string& id : ids) {
      Job job = *e.GetJob(id);
      EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED) << id;
      EXPECT_EQ(job.error().code(), "deadline_exceeded") << id;
      EXPECT_EQ(job.attempts_size(), 0) << id;
    }
    EXPECT_EQ(e.ListQueues().queues(0).depth(), 0);
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x", 2).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(2)).ok());
    co_await Settle();
    EXPECT_TRUE(exec.Assigns().empty());
  });
}

TEST_F(BrokerEngineTest, DeadlineAlreadyPastAtSubmitFailsTheJobDurablyAndAFarOneArmsNothing) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec late = Spec("q");
    *late.mutable_deadline() = WallClockIn(absl::Seconds(-1));
    JobSpec far = Spec("q");
    far.mutable_deadline()->set_seconds(253'402'300'799);  // 9999-12-31: never in practice
    auto ids = *co_await e.Submit(Batch(late, far), false);
    absl::StatusOr<Job> stored = co_await store_.GetJob(ids[0]);
    EXPECT_TRUE(stored.ok()) << stored.status();
    if (!stored.ok()) co_return;
    EXPECT_EQ(stored->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(stored->error().code(), "deadline_exceeded");
    co_await runtime::Sleep(24h);  // an auto-advancing clock would jump to any timer
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

TEST_F(BrokerEngineTest, DeadlineIsReArmedFromTheStoredSpecAfterARestart) {
  std::string id;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    *s.mutable_deadline() = WallClockIn(absl::Seconds(30));
    id = (*co_await e.Submit(Batch(s), false))[0];
  });
  engine_.reset();  // only the store remains
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_QUEUED);
    co_await runtime::Sleep(31s);
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(e.GetJob(id)->error().code(), "deadline_exceeded");
  });
}

TEST_F(BrokerEngineTest, GracefullyClosedSessionReturnsUnstartedAssignmentsWithoutUsingAnAttempt) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];  // one attempt only
    FakeChannel draining;
    std::uint64_t s = *e.Attach(Hello("draining", 1).hello(), &draining);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(draining.Assigns().size(), 1u);  // in flight when the executor began to drain
    e.Detach(s, /*graceful=*/true);
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(job.attempt(), 0);
    EXPECT_EQ(job.attempts_size(), 0);
    FakeChannel next;
    std::uint64_t n = *e.Attach(Hello("next", 1).hello(), &next);
    EXPECT_TRUE(e.OnExecutorMessage(n, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(next.Assigns().at(0).assign().attempt(), 1);
  });
}

TEST_F(BrokerEngineTest, CancelledQueuedJobNeverRuns) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    auto cancelled = co_await e.CancelJob(id);
    EXPECT_EQ(cancelled->state(), cohort::v1::JOB_STATE_CANCELLED);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(exec.Assigns().empty());
    auto again = co_await e.CancelJob(id);
    EXPECT_TRUE(again->already_ended());
    auto unknown = co_await e.CancelJob("job-nope");
    EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  });
}

TEST_F(BrokerEngineTest, CancellingARunningJobTellsItsExecutor) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    auto r = co_await e.CancelJob(id);
    EXPECT_EQ(r->state(), cohort::v1::JOB_STATE_RUNNING);
    co_await Settle();
    EXPECT_TRUE(exec.messages.back().has_cancel());
    EXPECT_EQ(exec.messages.back().cancel().job_id(), id);
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(id, 1, "killed")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(BrokerEngineTest, FailedAttemptWaitsForItsBackoffAndReleaseIsFenced) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_max_attempts(2);
    std::string id = (*co_await e.Submit(Batch(s), false))[0];
    FakeChannel exec;
    std::uint64_t session = *e.Attach(Hello("x", 2).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, 1, "boom")).ok());
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_PENDING);
    EXPECT_TRUE(job.has_not_before());
    cohort::v1::ReleaseJobsRequest stale;
    auto* r = stale.add_releases();
    r->set_job_id(id);
    r->set_attempt(7);
    r->set_reason(cohort::v1::TRANSITION_REASON_BACKOFF);
    auto skipped = co_await e.ReleaseJobs(stale);
    EXPECT_TRUE(skipped->empty());
    r->set_attempt(1);
    auto released = co_await e.ReleaseJobs(stale);
    EXPECT_EQ(released->size(), 1u);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, 2, "boom again")).ok());
    co_await Settle();
    job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(job.attempts_size(), 2);
    EXPECT_EQ(job.attempts(0).error().message(), "boom");
    EXPECT_EQ(job.attempts(1).error().message(), "boom again");
  });
}

TEST_F(BrokerEngineTest, PausedQueueIsNotDispatchedUntilResumed) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    co_await e.Submit(Batch(Spec("q")), false);
    EXPECT_TRUE((co_await e.PauseQueue("q", true)).ok());
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(exec.Assigns().empty());
    EXPECT_TRUE(e.ListQueues().queues(0).paused());
    EXPECT_TRUE((co_await e.PauseQueue("q", false)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);
    EXPECT_EQ((co_await e.PauseQueue("Not Valid", true)).code(), absl::StatusCode::kInvalidArgument);
  });
}

TEST_F(BrokerEngineTest, RateLimitedQueueDispatchesNoFasterThanItsRate) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    cohort::v1::QueueLimits limits;
    limits.set_max_rate(2);  // jobs per second, bursts of 2
    cohort::v1::CreateQueueRequest create;
    create.set_queue("slow");
    *create.mutable_limits() = limits;
    EXPECT_TRUE((co_await e.CreateQueue(create)).ok());
    std::vector<JobSpec> specs(6, Spec("slow"));
    co_await e.Submit(specs, false);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 10).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(10)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 2u);  // the burst
    co_await runtime::Sleep(std::chrono::milliseconds(500));
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 3u);  // one more token after half a second
    co_await runtime::Sleep(std::chrono::milliseconds(1500));
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 6u);
    EXPECT_EQ(ElapsedMs(), 2000);
    cohort::v1::QueueLimits negative;
    negative.set_max_rate(-1);
    EXPECT_EQ((co_await e.SetQueueLimits("slow", negative)).status().code(), absl::StatusCode::kInvalidArgument);
  });
}

TEST_F(BrokerEngineTest, QueueRateOutsideItsRangeIsRejected) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    cohort::v1::CreateQueueRequest create;
    create.set_queue("q");
    EXPECT_TRUE((co_await e.CreateQueue(create)).ok());
    const std::vector<double> bad = {1e-300, 1e-7, 1e7, std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN(), -1.0};
    for (double rate : bad) {
      cohort::v1::QueueLimits limits;
      limits.set_max_rate(rate);
      EXPECT_EQ((co_await e.SetQueueLimits("q", limits)).status().code(), absl::StatusCode::kInvalidArgument)
          << rate;
    }
    const std::vector<double> good = {0.0, kMinQueueRate, kMaxQueueRate};
    for (double rate : good) {
      cohort::v1::QueueLimits limits;
      limits.set_max_rate(rate);
      EXPECT_TRUE((co_await e.SetQueueLimits("q", limits)).ok()) << rate;
    }
  });
}

TEST_F(BrokerEngineTest, TinyRateStoredBeforeItWasRejectedIsClampedAndDoesNotWedgeDispatch) {
  // As a broker before the range check could have stored it.
  cohort::v1::QueueInfo info;
  info.set_name("q");
  info.mutable_limits()->set_max_rate(1e-300);
  info.mutable_limits()->set_weight(1);
  store::JobBatch batch;
  batch.PutMeta("queue:q", info.SerializeAsString());
  ASSERT_TRUE(Run(store_.Commit(std::move(batch))).ok());
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(e.ListQueues().queues(0).limits().max_rate(), kMinQueueRate);
    co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 2).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(2)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().size(), 1u);  // the burst of one
    // The next token is a million seconds away: a timer, not a spin, and other work goes on.
    co_await runtime::Sleep(24h);
    EXPECT_EQ(exec.Assigns().size(), 1u);
    EXPECT_EQ(ElapsedMs(), 24LL * 3600 * 1000);
    auto other = co_await e.Submit(Batch(Spec("other")), false);
    co_await Settle();
    EXPECT_TRUE(other.ok());
    EXPECT_EQ(exec.Assigns().size(), 2u);
  });
}

TEST_F(BrokerEngineTest, EndedJobsAreDeletedAfterTheirTtl) {
  options_.sweep_interval = 1s;
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec short_lived = Spec("q");
    short_lived.mutable_result_ttl()->set_seconds(0);
    JobSpec kept = Spec("q");  // the default ttl: a week
    auto ids = *co_await e.Submit(Batch(short_lived, kept), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    EXPECT_TRUE(e.GetJob(ids[0])->has_expire_time());
    co_await runtime::Sleep(2s);  // a sweep runs
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0]).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await store_.GetJob(ids[0])).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(BrokerEngineTest, HugeDurationsInAStoredSpecGiveFarButValidTimesNeverAnOverflow) {
  // As Submit stored specs before it range-checked them: duration.proto's largest values.
  Job job;
  job.set_id("job-old");
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.set_sequence(1);
  *job.mutable_spec() = Spec("q");
  job.mutable_spec()->set_max_attempts(2);
  job.mutable_spec()->mutable_result_ttl()->set_seconds(315'576'000'000);  // 10,000 years
  job.mutable_spec()->mutable_backoff()->mutable_initial()->set_seconds(315'576'000'000);
  job.mutable_spec()->mutable_backoff()->mutable_max()->set_seconds(315'576'000'000);
  job.mutable_spec()->mutable_backoff()->set_jitter(7);
  *job.mutable_queue_time() = common::ToProto(absl::Now());
  store::JobBatch batch;
  batch.PutJob(job, nullptr);
  ASSERT_TRUE(Run(store_.Commit(std::move(batch))).ok());
  WithEngine([](BrokerEngine& e) -> Task<void> {
    constexpr std::int64_t kYear9999 = 253'402'300'799;  // timestamp.proto's last second
    const absl::Time now = absl::Now();
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail("job-old", 1, "boom")).ok());
    co_await Settle();
    Job retried = *e.GetJob("job-old");
    EXPECT_EQ(retried.state(), cohort::v1::JOB_STATE_PENDING);
    // The backoff is capped at the 100-year wire maximum, jitter (clamped to 1) included.
    EXPECT_LE(common::FromProto(retried.not_before()), now + common::kMaxWireDuration + absl::Hours(1));
    EXPECT_GE(common::FromProto(retried.not_before()), now);
    EXPECT_LE(retried.not_before().seconds(), kYear9999);
    EXPECT_TRUE((co_await e.CancelJob("job-old")).ok());
    Job ended = *e.GetJob("job-old");
    EXPECT_EQ(ended.state(), cohort::v1::JOB_STATE_CANCELLED);
    EXPECT_LE(ended.expire_time().seconds(), kYear9999);
    EXPECT_GT(common::FromProto(ended.expire_time()), now + absl::Hours(24 * 365 * 99));
  });
}

TEST_F(BrokerEngineTest, RestartRecoversEveryJobAndRequeuesRunningAttempts) {
  std::string queued_id;
  std::string running_id;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    running_id = (*co_await e.Submit(Batch(Spec("q", 9)), false))[0];
    queued_id = (*co_await e.Submit(Batch(Spec("q", 0)), false))[0];
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(running_id)->state(), cohort::v1::JOB_STATE_RUNNING);
  });
  engine_.reset();  // the broker "crashes": only the store remains
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(e.GetJob(queued_id)->state(), cohort::v1::JOB_STATE_QUEUED);
    Job lost = *e.GetJob(running_id);
    EXPECT_EQ(lost.state(), cohort::v1::JOB_STATE_FAILED);  // one attempt, spent
    EXPECT_EQ(lost.error().code(), "lease_expired");
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(exec.Assigns().at(0).assign().job().id(), queued_id);
    co_return;
  });
}

// What clients can see of the engine's jobs and queues: every listing page (ids in
// order, summaries, page tokens), every job as ReadJob returns it, the queues, and how
// many finished jobs are held as summaries.
Task<std::string> Observe(BrokerEngine& e) {
  std::string seen;
  cohort::v1::ListJobsRequest request;
  request.set_page_size(3);
  do {
    absl::StatusOr<cohort::v1::ListJobsResponse> page = co_await e.ListJobs(request);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    seen += page->DebugString();
    for (const Job& listed : page->jobs()) {
      absl::StatusOr<Job> job = co_await e.ReadJob(listed.id());
      EXPECT_TRUE(job.ok()) << job.status();
      if (job.ok()) seen += job->DebugString();
    }
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  seen += e.ListQueues().DebugString();
  seen += absl::StrCat("summarized jobs: ", e.summarized_jobs(), "\n");
  co_return seen;
}

TEST_F(BrokerEngineTest, RestartReadingJobsInPagesRecoversWhatOnePageOfEveryJobDoes) {
  std::vector<std::string> ids;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    JobSpec keyed = Spec("b", 1);
    keyed.set_idempotency_key("once");
    ids = *co_await e.Submit(Batch(Spec("a", 9), Spec("a", 9), Spec("b", 9), Spec("a", 9), keyed, Spec("c"),
                                   Spec("a", 5), Spec("b"), Spec("c", 2)),
                             false);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 4).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(4)).ok());
    co_await Settle();
    std::vector<BrokerMessage> assigned = exec.Assigns();
    EXPECT_EQ(assigned.size(), 4u);
    if (assigned.size() != 4) co_return;
    // Two succeed, one fails, one is still running when the broker crashes.
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(assigned[0].assign().job().id(), 1, "r0")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(assigned[1].assign().job().id(), 1, "boom")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(assigned[2].assign().job().id(), 1, "r2")).ok());
    co_await Settle();
  });
  engine_.reset();  // the broker "crashes": only the store remains

  // Pages of 2 of the 9 jobs: page boundaries fall between finished, running, queued
  // and keyed jobs.
  options_.recovery.page_jobs = 2;
  std::string paged;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    paged = co_await Observe(e);
    for (const std::string& id : ids) {
      absl::StatusOr<Job> job = co_await e.ReadJob(id);
      EXPECT_TRUE(job.ok()) << id << ": " << job.status();
    }
    EXPECT_EQ(e.summarized_jobs(), 4u) << "two succeeded, one failed, one lost its attempt";
    JobSpec again = Spec("b", 1);
    again.set_idempotency_key("once");
    EXPECT_EQ((*co_await e.Submit(Batch(again), false)).at(0), ids[4]) << "the key still names its job";
  });
  engine_.reset();
  options_.recovery.page_jobs = 1'000;
  std::string whole;
  WithEngine([&](BrokerEngine& e) -> Task<void> { whole = co_await Observe(e); });
  EXPECT_EQ(paged, whole);
}

// ---- Promises of the protos (issue 19) ----

TEST_F(BrokerEngineTest, WeightedRoundRobinGivesEachQueueItsWeightOnEveryRound) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    cohort::v1::QueueLimits three;
    three.set_weight(3);
    cohort::v1::CreateQueueRequest create;
    create.set_queue("a");
    EXPECT_TRUE((co_await e.CreateQueue(create)).ok());
    EXPECT_TRUE((co_await e.SetQueueLimits("a", three)).ok());
    std::vector<JobSpec> specs(12, Spec("a"));
    for (int i = 0; i < 12; ++i) specs.push_back(Spec("b"));
    std::vector<std::string> ids = *co_await e.Submit(specs, false);
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 12).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(12)).ok());
    co_await Settle();
    std::string queues;
    for (const auto& a : exec.Assigns()) queues += a.assign().job().spec().queue();
    EXPECT_EQ(queues, "aaabaaabaaab");
  });
}

TEST_F(BrokerEngineTest, AKeyOrAParentRepeatedWithinOneSubmitIsInvalidArgumentAndWritesNothing) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec keyed = Spec("q");
    keyed.set_idempotency_key("twice");
    auto twice = co_await e.Submit(Batch(Spec("q"), keyed, keyed), false);
    EXPECT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(twice.status().message().find("jobs[2].idempotency_key"), std::string::npos) << twice.status();
    JobSpec index_twice = Spec("q");
    index_twice.add_depends_on_index(0);
    index_twice.add_depends_on_index(0);
    auto r2 = co_await e.Submit(Batch(Spec("q"), index_twice), false);
    EXPECT_EQ(r2.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r2.status().message().find("jobs[1].depends_on_index"), std::string::npos) << r2.status();
    cohort::v1::ListJobsRequest all;
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 0);
    const std::string parent = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    JobSpec id_twice = Spec("q");
    id_twice.add_depends_on(parent);
    id_twice.add_depends_on(parent);
    auto r3 = co_await e.Submit(Batch(id_twice), false);
    EXPECT_EQ(r3.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r3.status().message().find("jobs[0].depends_on"), std::string::npos) << r3.status();
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 1);
    // The refused batch took no key.
    auto once = co_await e.Submit(Batch(keyed), false);
    EXPECT_TRUE(once.ok());
    EXPECT_EQ((co_await e.ListJobs(all))->jobs_size(), 2);
  });
}

TEST_F(BrokerEngineTest, ListJobsPageTokenKeepsItsFiltersAndRefusesOthers) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("p"), Spec("o"), Spec("p"), Spec("p")), false);
    cohort::v1::ListJobsRequest req;
    req.set_queue("p");
    req.set_page_size(2);
    cohort::v1::ListJobsResponse first = *(co_await e.ListJobs(req));
    EXPECT_EQ(first.jobs_size(), 2);
    if (first.jobs_size() == 2) EXPECT_EQ(first.jobs(1).id(), ids[2]);
    EXPECT_FALSE(first.next_page_token().empty());
    req.set_page_token(first.next_page_token());
    cohort::v1::ListJobsResponse second = *(co_await e.ListJobs(req));
    EXPECT_EQ(second.jobs_size(), 1);
    if (second.jobs_size() == 1) EXPECT_EQ(second.jobs(0).id(), ids[3]);
    EXPECT_EQ(second.next_page_token(), "");
    cohort::v1::ListJobsRequest other = req;
    other.set_queue("o");
    EXPECT_EQ((co_await e.ListJobs(other)).status().code(), absl::StatusCode::kInvalidArgument);
    other = req;
    other.add_states(cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ((co_await e.ListJobs(other)).status().code(), absl::StatusCode::kInvalidArgument);
    other = req;
    other.set_page_token(ids[0]);  // a bare job id is not a token this broker issued
    EXPECT_EQ((co_await e.ListJobs(other)).status().code(), absl::StatusCode::kInvalidArgument);
    co_return;
  });
}

TEST_F(BrokerEngineTest, ProgressIsClampedToZeroToOne) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel exec;
    std::uint64_t s = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(s, Credit(1)).ok());
    co_await Settle();
    for (double fraction : {7.0, -3.0, 0.5, std::numeric_limits<double>::quiet_NaN()}) {
      ExecutorMessage m;
      m.mutable_progress()->set_job_id(id);
      m.mutable_progress()->set_attempt(1);
      m.mutable_progress()->mutable_progress()->set_fraction(fraction);
      EXPECT_TRUE(e.OnExecutorMessage(s, m).ok());
      const double want = fraction > 1 ? 1.0 : fraction >= 0 ? fraction : 0.0;
      EXPECT_EQ(e.GetJob(id)->progress().fraction(), want) << "reported " << fraction;
    }
  });
}

TEST_F(BrokerEngineTest, ASecondStreamWithTheSameExecutorIdEndsTheFirstWithAbortedAndKeepsItsLease) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel first;
    std::uint64_t a = *e.Attach(Hello("x", 1).hello(), &first);
    EXPECT_TRUE(e.OnExecutorMessage(a, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(first.Assigns().size(), 1u);
    FakeChannel second;
    std::uint64_t b = *e.Attach(Hello("x", 1).hello(), &second);
    EXPECT_TRUE(first.ended.has_value());
    if (first.ended) EXPECT_EQ(first.ended->code(), absl::StatusCode::kAborted) << *first.ended;
    EXPECT_FALSE(second.ended.has_value());
    EXPECT_EQ(e.ListExecutors().executors_size(), 1);
    EXPECT_TRUE(e.OnExecutorMessage(b, Complete(id, 1, "from the second")).ok());
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
    EXPECT_EQ(job.attempts_size(), 1);
  });
}

TEST_F(BrokerEngineTest, DrainIsSentOnEveryStreamAndNoAssignFollows) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    FakeChannel x;
    FakeChannel y;
    std::uint64_t sx = *e.Attach(Hello("x", 2).hello(), &x);
    std::uint64_t sy = *e.Attach(Hello("y", 2).hello(), &y);
    e.DrainExecutors();
    for (const FakeChannel* c : {&x, &y}) {
      EXPECT_TRUE(!c->messages.empty() && c->messages.back().has_drain());
    }
    // Work and credit after the drain: nothing is assigned, and a late stream is told too.
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q")), false);
    EXPECT_TRUE(e.OnExecutorMessage(sx, Credit(2)).ok());
    EXPECT_TRUE(e.OnExecutorMessage(sy, Credit(2)).ok());
    FakeChannel late;
    EXPECT_TRUE(e.Attach(Hello("z", 1).hello(), &late).ok());
    co_await Settle();
    EXPECT_TRUE(x.Assigns().empty());
    EXPECT_TRUE(y.Assigns().empty());
    EXPECT_EQ(late.messages.size(), 2u);
    EXPECT_TRUE(late.messages.size() == 2 && late.messages[1].has_drain());
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

TEST_F(BrokerEngineTest, AnotherPrincipalCannotTakeOverAConnectedExecutorIdButTheSameOneReplacesItsStream) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    std::string id = (*co_await e.Submit(Batch(Spec("q")), false, "ci"))[0];
    EXPECT_EQ(e.GetJob(id)->submitted_by(), "ci");
    FakeChannel real;
    std::uint64_t session = *e.Attach(Hello("x1", 1).hello(), &real, "worker-a");
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(real.Assigns().size(), 1u);
    FakeChannel impostor;
    absl::StatusOr<std::uint64_t> refused = e.Attach(Hello("x1", 1).hello(), &impostor, "fleet");
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_FALSE(real.ended.has_value());  // the real stream is untouched
    EXPECT_TRUE(e.OnExecutorMessage(session, Complete(id, 1, "done")).ok());
    co_await Settle();
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.result(), "done");
    EXPECT_EQ(job.attempts_size(), 1);
    if (job.attempts_size() == 1) EXPECT_EQ(job.attempts(0).executor_principal(), "worker-a");
    // The same principal reconnecting replaces its own stream, as before.
    FakeChannel again;
    EXPECT_TRUE(e.Attach(Hello("x1", 1).hello(), &again, "worker-a").ok());
    EXPECT_EQ(real.ended.value_or(absl::OkStatus()).code(), absl::StatusCode::kAborted);
  });
}

}  // namespace
}  // namespace cohort::broker
