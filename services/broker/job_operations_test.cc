// RetryJob and DeleteJob on the engine, on a manual clock with an in-memory store:
// a new attempt budget with the history kept, fencing, idempotency, and the refusals.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/common/proto_time.h"
#include "libs/runtime/test_util.h"
#include "services/broker/broker_engine.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::Job;
using cohort::v1::JobSpec;
using runtime::Task;
using testing::Batch;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

JobSpec Attempts(JobSpec spec, int max_attempts) {
  spec.set_max_attempts(max_attempts);
  return spec;
}

// Records the job a watcher was told ended.
struct EndWatcher final : JobWatcher {
  void OnJobEnded(const Job& job) override { ended = job; }
  std::optional<Job> ended;
};

class JobOperationsTest : public testing::EngineTest {
 protected:
  // Runs the job's next attempt on `exec` and fails it; returns the attempt number.
  static Task<int> RunAndFail(BrokerEngine& e, FakeChannel& exec, std::uint64_t session, const std::string& id) {
    const std::size_t before = exec.Assigns().size();
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    auto assigns = exec.Assigns();
    EXPECT_EQ(assigns.size(), before + 1);
    if (assigns.size() != before + 1) co_return 0;
    EXPECT_EQ(assigns.back().assign().job().id(), id);
    const int attempt = assigns.back().assign().attempt();
    EXPECT_TRUE(e.OnExecutorMessage(session, Fail(id, attempt, absl::StrCat("boom ", attempt))).ok());
    co_await Settle();
    co_return attempt;
  }
};

TEST_F(JobOperationsTest, RetryOfAFailedJobQueuesItAgainWithANewBudgetAndKeepsItsAttempts) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Attempts(Spec("q"), 1)), false))[0];
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_EQ(co_await RunAndFail(e, exec, session, id), 1);
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_FAILED);

    absl::StatusOr<cohort::v1::RetryJobResponse> r = co_await e.RetryJob(id, 0);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->retried());
    EXPECT_EQ(r->job().state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_TRUE(r->job().spec().payload().empty());
    const Job job = *e.GetJob(id);
    EXPECT_EQ(job.retry_count(), 1);
    EXPECT_EQ(job.attempt_base(), 1);
    EXPECT_FALSE(job.has_error());
    EXPECT_FALSE(job.has_end_time());
    EXPECT_EQ(job.attempts_size(), 1);
    EXPECT_EQ(job.attempts(0).error().message(), "boom 1");

    // Budget of one attempt again: the second attempt is numbered 2 and its failure ends it.
    EXPECT_EQ(co_await RunAndFail(e, exec, session, id), 2);
    const Job again = *e.GetJob(id);
    EXPECT_EQ(again.state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ(again.attempts_size(), 2);
    EXPECT_EQ(again.attempts(0).error().message(), "boom 1");
    EXPECT_EQ(again.error().message(), "boom 2");
  });
}

TEST_F(JobOperationsTest, ARetriedJobGetsItsFullBudgetOfAttemptsAgain) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Attempts(Spec("q"), 2)), false))[0];
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    co_await RunAndFail(e, exec, session, id);
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_PENDING);  // backoff: one attempt left
    EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    EXPECT_TRUE((co_await e.RetryJob(id, 0))->retried());
    co_await RunAndFail(e, exec, session, id);
    // Attempt 2 is the first of the new budget of 2, so another is due after a backoff.
    const Job job = *e.GetJob(id);
    EXPECT_EQ(job.attempt(), 2);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_PENDING);
    EXPECT_TRUE(job.has_not_before());
  });
}

TEST_F(JobOperationsTest, RetryIsIdempotentAndFencedByTheExpectedAttempt) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Attempts(Spec("q"), 1)), false))[0];
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    co_await RunAndFail(e, exec, session, id);

    auto stale = co_await e.RetryJob(id, 7);  // the caller saw another attempt
    EXPECT_TRUE(stale.ok());
    EXPECT_FALSE(stale->retried());
    EXPECT_EQ(stale->job().state(), cohort::v1::JOB_STATE_FAILED);

    EXPECT_TRUE((co_await e.RetryJob(id, 1))->retried());
    auto resent = co_await e.RetryJob(id, 1);  // the same request again
    EXPECT_TRUE(resent.ok());
    EXPECT_FALSE(resent->retried());
    EXPECT_EQ(e.GetJob(id)->retry_count(), 1);
  });
}

TEST_F(JobOperationsTest, RetryRefusesSucceededJobsUnknownIdsAndANegativeExpectedAttempt) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(e.OnExecutorMessage(session, testing::Complete(id, 1, "ok")).ok());
    co_await Settle();
    EXPECT_EQ((co_await e.RetryJob(id, 0)).status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ((co_await e.RetryJob("nope", 0)).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await e.RetryJob(id, -1)).status().code(), absl::StatusCode::kInvalidArgument);
  });
}

TEST_F(JobOperationsTest, RetryOfAJobThatNeverRanWaitsForItsParentsAgainAndRefusesADeletedParent) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec child = Spec("q");
    child.add_depends_on_index(0);
    auto ids = *co_await e.Submit(Batch(Spec("q"), child), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    // Its parent has not succeeded: PENDING until the scheduler releases it.
    auto r = co_await e.RetryJob(ids[1], 0);
    EXPECT_TRUE(r.ok() && r->retried());
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_PENDING);

    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    EXPECT_TRUE((co_await e.DeleteJob(ids[0])).ok());  // its only dependent has ended
    EXPECT_EQ((co_await e.RetryJob(ids[1], 0)).status().code(), absl::StatusCode::kFailedPrecondition);
  });
}

TEST_F(JobOperationsTest, RetryWaitsForARunAtStillAhead) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    *s.mutable_run_at() = common::ToProto(absl::Now() + absl::Hours(1));
    const std::string id = (*co_await e.Submit(Batch(s), false))[0];
    EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    EXPECT_TRUE((co_await e.RetryJob(id, 0))->retried());
    const Job job = *e.GetJob(id);
    EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_PENDING);
    EXPECT_EQ(job.not_before().seconds(), s.run_at().seconds());
  });
}

TEST_F(JobOperationsTest, RetryIsRefusedWhileWritesAreNotAdmittedAndWritesNothing) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    EXPECT_TRUE((co_await e.CancelJob(id)).ok());
    e.SetWriteAdmission([] { return absl::ResourceExhaustedError("disk low"); });
    EXPECT_EQ((co_await e.RetryJob(id, 0)).status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(e.GetJob(id)->state(), cohort::v1::JOB_STATE_CANCELLED);
    // Deletes go on: they free space.
    EXPECT_TRUE((co_await e.DeleteJob(id)).ok());
  });
}

TEST_F(JobOperationsTest, DeleteRemovesAQueuedJobForGoodWithADeletedEvent) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    JobSpec s = Spec("q");
    s.set_idempotency_key("k1");
    const std::string id = (*co_await e.Submit(Batch(s), false))[0];
    absl::StatusOr<cohort::v1::DeleteJobResponse> r = co_await e.DeleteJob(id);
    EXPECT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(e.GetJob(id).status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ((co_await store_.GetJob(id)).status().code(), absl::StatusCode::kNotFound);
    auto events = co_await store_.ReadEvents(0, 100, 1 << 20);
    EXPECT_TRUE(events.ok());
    EXPECT_EQ(events->back().reason(), cohort::v1::TRANSITION_REASON_DELETED);
    EXPECT_EQ(events->back().to_state(), cohort::v1::JOB_STATE_UNSPECIFIED);
    EXPECT_EQ(events->back().from_state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(events->back().job().id(), id);
    // Nothing is dispatched for it, and its idempotency key is free again.
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_TRUE(exec.Assigns().empty());
    const std::string fresh = (*co_await e.Submit(Batch(s), false))[0];
    EXPECT_NE(fresh, id);
    EXPECT_EQ((co_await e.DeleteJob(id)).status().code(), absl::StatusCode::kNotFound);
  });
}

TEST_F(JobOperationsTest, DeleteRefusesARunningJobAndAParentThatUnfinishedJobsWaitOn) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    JobSpec child = Spec("q");
    child.add_depends_on_index(0);
    auto ids = *co_await e.Submit(Batch(Spec("q"), child), false);
    auto parent = co_await e.DeleteJob(ids[0]);
    EXPECT_EQ(parent.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(parent.status().message().find(ids[1]), absl::string_view::npos) << parent.status();
    FakeChannel exec;
    const std::uint64_t session = *e.Attach(Hello("x", 1).hello(), &exec);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(1)).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_RUNNING);
    EXPECT_EQ((co_await e.DeleteJob(ids[0])).status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE((co_await e.DeleteJob(ids[1])).ok());  // the child first
  });
}

TEST_F(JobOperationsTest, AWaiterOnADeletedJobSeesItEndCancelledAsDeleted) {
  WithEngine([](BrokerEngine& e) -> Task<void> {
    const std::string id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    EndWatcher watcher;
    EXPECT_FALSE((co_await e.WatchJob(id, &watcher))->has_value());
    EXPECT_TRUE((co_await e.DeleteJob(id)).ok());
    co_await Settle();
    EXPECT_TRUE(watcher.ended.has_value());
    EXPECT_EQ(watcher.ended->state(), cohort::v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(watcher.ended->error().code(), "deleted");
  });
}

TEST_F(JobOperationsTest, ADeletedJobStaysDeletedAfterARestart) {
  std::string id;
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    id = (*co_await e.Submit(Batch(Spec("q")), false))[0];
    EXPECT_TRUE((co_await e.DeleteJob(id)).ok());
  });
  engine_.reset();
  WithEngine([&](BrokerEngine& e) -> Task<void> {
    EXPECT_EQ(e.GetJob(id).status().code(), absl::StatusCode::kNotFound);
    const cohort::v1::ListQueuesResponse queues = e.ListQueues();
    for (const cohort::v1::QueueInfo& q : queues.queues()) EXPECT_EQ(q.depth(), 0) << q.name();
    co_return;
  });
}

}  // namespace
}  // namespace cohort::broker
