// The broker's logic on a manual clock with an in-memory store: dispatch order,
// leases, fencing, cancellation, retries and recovery.
#include "services/broker/broker_engine.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/test_util.h"
#include "libs/store/mem_job_store.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::BrokerMessage;
using cohort::v1::ExecutorMessage;
using cohort::v1::Job;
using cohort::v1::JobSpec;
using runtime::Task;

// Records what the broker sends to one executor.
class FakeChannel final : public ExecutorChannel {
 public:
  void Send(BrokerMessage m) override { messages.push_back(std::move(m)); }
  std::vector<BrokerMessage> Assigns() const {
    std::vector<BrokerMessage> out;
    for (const auto& m : messages) {
      if (m.has_assign()) out.push_back(m);
    }
    return out;
  }
  std::vector<BrokerMessage> messages;
};

JobSpec Spec(std::string queue, int priority = 0, std::string payload = "p") {
  JobSpec s;
  s.set_queue(std::move(queue));
  s.set_kind("builtin.echo");
  s.set_priority(priority);
  s.set_payload(std::move(payload));
  return s;
}

// A Submit argument built without an initializer_list: GCC 12 cannot keep one alive
// across the co_await it appears in.
template <typename... Specs>
std::vector<JobSpec> Batch(Specs... specs) {
  std::vector<JobSpec> v;
  (v.push_back(std::move(specs)), ...);
  return v;
}

ExecutorMessage Hello(std::string id, int capacity) {
  ExecutorMessage m;
  m.mutable_hello()->set_executor_id(std::move(id));
  m.mutable_hello()->set_capacity(capacity);
  return m;
}

ExecutorMessage Credit(int n) {
  ExecutorMessage m;
  m.mutable_credit()->set_credits(n);
  return m;
}

ExecutorMessage Complete(const std::string& id, int attempt, std::string result) {
  ExecutorMessage m;
  m.mutable_complete()->set_job_id(id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->set_result(std::move(result));
  return m;
}

ExecutorMessage Fail(const std::string& id, int attempt, std::string message) {
  ExecutorMessage m;
  m.mutable_complete()->set_job_id(id);
  m.mutable_complete()->set_attempt(attempt);
  m.mutable_complete()->mutable_error()->set_code("exit_status");
  m.mutable_complete()->mutable_error()->set_message(std::move(message));
  return m;
}

class BrokerEngineTest : public runtime::testing::ManualLoopTest {
 protected:
  BrokerEngineTest() { options_.lease = 10s; }

  std::unique_ptr<BrokerEngine> NewEngine() {
    return std::make_unique<BrokerEngine>(loop_, store_, metrics_, options_,
                                          [this] { return absl::StrCat("job-", 1000 + next_id_++); });
  }
  // Runs body with a started engine.
  template <typename Body>
  void WithEngine(Body body) {
    engine_ = NewEngine();
    Run([](BrokerEngine* e, Body* b) -> Task<void> {
      absl::Status started = co_await e->Start();
      EXPECT_TRUE(started.ok()) << started;
      co_await (*b)(*e);
      co_await e->Stop();
    }(engine_.get(), &body));
  }
  // Lets commits finish and their messages go out.
  static Task<void> Settle() {
    for (int i = 0; i < 10; ++i) co_await runtime::Yield();
  }

  BrokerOptions options_;
  store::MemJobStore store_;
  prometheus::Registry registry_;
  BrokerMetrics metrics_{registry_};
  std::unique_ptr<BrokerEngine> engine_;
  int next_id_ = 0;
};

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

TEST_F(BrokerEngineTest, SubmitIsAllOrNothingAndNamesTheBadField) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    auto result = co_await e.Submit(Batch(Spec("good"), Spec("Bad Queue")), false);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(result.status().message().find("jobs[1].queue"), std::string::npos) << result.status();
    cohort::v1::ListJobsRequest all;
    EXPECT_EQ(e.ListJobs(all)->jobs_size(), 0);
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
    EXPECT_EQ(e.ListJobs(all)->jobs_size(), 0);
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
    EXPECT_EQ(e.ListJobs(all)->jobs_size(), 1);
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
    ExecutorMessage beat;
    auto* ref = beat.mutable_heartbeat()->add_running();
    ref->set_job_id(id);
    ref->set_attempt(1);
    for (int i = 0; i < 10; ++i) {  // 50 s of running, 5 s apart, lease 10 s
      co_await runtime::Sleep(5s);
      EXPECT_TRUE(e.OnExecutorMessage(s, beat).ok());
    }
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_RUNNING) << e.GetJob(id)->DebugString();
    EXPECT_EQ(e.GetJob(id)->attempt(), 1);
  });
}

TEST_F(BrokerEngineTest, DroppedStreamRedeliversItsJobsAndSpentAttemptsFail) {
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
      e.Detach(s);
      co_await Settle();
    }
    Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(job.error().code(), "executor_lost");
    EXPECT_EQ(job.attempts_size(), 2);
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
    EXPECT_TRUE((co_await e.PauseQueue("q", true)).ok());
    co_await e.Submit(Batch(Spec("q")), false);
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
    EXPECT_TRUE((co_await e.SetQueueLimits("slow", limits)).ok());
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

}  // namespace
}  // namespace cohort::broker
