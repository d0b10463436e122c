// asyncio's waits over jobs, at the engine (no gRPC), on a manual clock with an
// in-memory store: one test per row of the README's semantics table.
#include "services/broker/job_waits.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "services/broker/engine_test_util.h"

namespace cohort::broker {
namespace {

using namespace std::chrono_literals;
using cohort::v1::JobOutcome;
using runtime::Task;
using runtime::TaskHandle;
using testing::Batch;
using testing::Complete;
using testing::Credit;
using testing::Fail;
using testing::FakeChannel;
using testing::Hello;
using testing::Spec;

// WaitFor requests are built as locals: GCC 12 mishandles a braced temporary argument
// in a coroutine's full-expression (it frees it twice).
class JobWaitsTest : public testing::EngineTest {
 protected:
  // Deadlines stay shorter than the 10 s lease, so a lease never runs out while a
  // test waits for one.
  runtime::TimePoint In(runtime::Duration d) { return loop_.Now() + d; }

  // Submits `n` jobs to one queue and leases them all to a fresh executor "x", which
  // holds them RUNNING (attempt 1) until the test completes or fails them.
  Task<std::vector<std::string>> SubmitRunning(BrokerEngine& e, int n, FakeChannel& channel,
                                               std::uint64_t& session) {
    std::vector<cohort::v1::JobSpec> specs(n, Spec("q"));
    std::vector<std::string> ids = *co_await e.Submit(specs, false);
    session = *e.Attach(Hello("x", n).hello(), &channel);
    EXPECT_TRUE(e.OnExecutorMessage(session, Credit(n)).ok());
    co_await Settle();
    EXPECT_EQ(channel.Assigns().size(), static_cast<std::size_t>(n));
    co_return ids;
  }
};

// Ids built without an initializer_list (see Batch).
template <typename... Ids>
std::vector<std::string> IdList(Ids... ids) {
  std::vector<std::string> v;
  (v.push_back(std::move(ids)), ...);
  return v;
}

std::vector<std::string> IdsOf(const std::vector<JobOutcome>& outcomes) {
  std::vector<std::string> ids;
  for (const JobOutcome& o : outcomes) ids.push_back(o.job_id());
  return ids;
}

// ---- Gather -------------------------------------------------------------------------------

TEST_F(JobWaitsTest, GatherReturnsOutcomesInTheOrderOfTheIdsNotTheOrderTheyEnded) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<std::vector<JobOutcome>>> gather =
        runtime::Spawn(waits.Gather(IdList(ids[0], ids[1], ids[2], ids[0]), false, std::nullopt));
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[2], 1, "c")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[0], 1, "a")).ok());
    co_await Settle();
    EXPECT_FALSE(gather.Done());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[1], 1, "b")).ok());
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await gather;
    EXPECT_TRUE(outcomes.ok()) << outcomes.status();
    EXPECT_EQ(IdsOf(*outcomes), IdList(ids[0], ids[1], ids[2], ids[0]));
    EXPECT_EQ((*outcomes)[0].result(), "a");
    EXPECT_EQ((*outcomes)[1].result(), "b");
    EXPECT_EQ((*outcomes)[2].result(), "c");
  });
}

TEST_F(JobWaitsTest, GatherWithoutReturnExceptionsFailsAtTheFirstFailureAndLeavesTheOthersRunning) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 2, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<std::vector<JobOutcome>>> gather =
        runtime::Spawn(waits.Gather(IdList(ids[0], ids[1]), false, std::nullopt));
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[1], 1, "disk full", "exit_status")).ok());
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await gather;
    EXPECT_EQ(outcomes.status().code(), absl::StatusCode::kAborted);
    EXPECT_EQ(outcomes.status().message(), absl::StrCat("job ", ids[1], " FAILED: exit_status: disk full"));
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_RUNNING);
  });
}

TEST_F(JobWaitsTest, GatherWithoutReturnExceptionsRaisesTheEarliestFailureWhenSeveralHaveEnded) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    // The last in request order fails first, the second one a second later.
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[2], 1, "first to fail")).ok());
    co_await Settle();
    co_await runtime::Sleep(1s);
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[1], 1, "second to fail")).ok());
    co_await Settle();
    JobWaits waits(e, metrics_);
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await waits.Gather(ids, false, std::nullopt);
    EXPECT_EQ(outcomes.status().code(), absl::StatusCode::kAborted);
    EXPECT_EQ(outcomes.status().message(), absl::StrCat("job ", ids[2], " FAILED: exit_status: first to fail"));
  });
}

TEST_F(JobWaitsTest, GatherCountsACancelledJobAsAFailure) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    JobWaits waits(e, metrics_);
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await waits.Gather(ids, false, In(5s));
    EXPECT_EQ(outcomes.status().code(), absl::StatusCode::kAborted);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

TEST_F(JobWaitsTest, GatherWithReturnExceptionsReturnsEveryFailureInItsSlot) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<std::vector<JobOutcome>>> gather = runtime::Spawn(waits.Gather(ids, true, std::nullopt));
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[0], 1, "boom")).ok());
    EXPECT_TRUE((co_await e.CancelJob(ids[2])).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[2], 1, "stopped", "cancelled")).ok());
    co_await Settle();
    EXPECT_FALSE(gather.Done());  // a failure does not end it early
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[1], 1, "ok")).ok());
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await gather;
    EXPECT_TRUE(outcomes.ok()) << outcomes.status();
    EXPECT_EQ(IdsOf(*outcomes), ids);
    EXPECT_EQ((*outcomes)[0].state(), cohort::v1::JOB_STATE_FAILED);
    EXPECT_EQ((*outcomes)[0].error().message(), "boom");
    EXPECT_EQ((*outcomes)[1].result(), "ok");
    EXPECT_EQ((*outcomes)[2].state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(JobWaitsTest, GatherTimeoutIsDeadlineExceededAndCancelsNothing) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    JobWaits waits(e, metrics_);
    const runtime::TimePoint start = loop_.Now();
    absl::StatusOr<std::vector<JobOutcome>> outcomes = co_await waits.Gather(ids, true, In(5s));
    EXPECT_EQ(outcomes.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(outcomes.status().message(), "timeout: 1 of 2 jobs ended (nothing was cancelled)");
    EXPECT_EQ(loop_.Now() - start, 5s);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

TEST_F(JobWaitsTest, WaitsNameUnknownJobsAndWaitForNothing) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q")), false);
    JobWaits waits(e, metrics_);
    absl::StatusOr<std::vector<JobOutcome>> g = co_await waits.Gather(IdList(ids[0], std::string("job-nope")), false, std::nullopt);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound);
    EXPECT_NE(g.status().message().find("job-nope"), std::string::npos) << g.status();
    absl::StatusOr<JobWaits::WaitResult> w =
        co_await waits.Wait(IdList(std::string("job-nope")), runtime::ReturnWhen::kAllCompleted, std::nullopt);
    EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
    JobWaits::WaitForRequest request{.job_id = "job-nope"};
    absl::StatusOr<std::string> f = co_await waits.WaitFor(request);
    EXPECT_EQ(f.status().code(), absl::StatusCode::kNotFound);
    AsCompletedJobs jobs(e, metrics_);
    EXPECT_EQ((co_await jobs.Start(IdList(std::string("job-nope")), std::nullopt)).code(), absl::StatusCode::kNotFound);
  });
}

// ---- Wait ---------------------------------------------------------------------------------

TEST_F(JobWaitsTest, WaitFirstCompletedReturnsWhenOneJobEnds) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<JobWaits::WaitResult>> wait =
        runtime::Spawn(waits.Wait(ids, runtime::ReturnWhen::kFirstCompleted, std::nullopt));
    co_await Settle();
    EXPECT_FALSE(wait.Done());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[1], 1, "b")).ok());
    absl::StatusOr<JobWaits::WaitResult> result = co_await wait;
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(IdsOf(result->done), IdList(ids[1]));
    EXPECT_EQ(result->pending, IdList(ids[0], ids[2]));
  });
}

// A FIRST_COMPLETED implementation fails this: the cancelled job alone must not end it.
TEST_F(JobWaitsTest, WaitFirstExceptionIgnoresACancelledJobAndReturnsAtAFailedOne) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<JobWaits::WaitResult>> wait =
        runtime::Spawn(waits.Wait(ids, runtime::ReturnWhen::kFirstException, std::nullopt));
    EXPECT_TRUE((co_await e.CancelJob(ids[0])).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[0], 1, "stopped", "cancelled")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[2], 1, "c")).ok());
    co_await Settle();
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_CANCELLED);
    EXPECT_FALSE(wait.Done());
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[1], 1, "boom")).ok());
    absl::StatusOr<JobWaits::WaitResult> result = co_await wait;
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(IdsOf(result->done), IdList(ids[0], ids[2], ids[1]));
    EXPECT_TRUE(result->pending.empty());
  });
}

TEST_F(JobWaitsTest, WaitFirstExceptionReturnsOnceEveryJobEndedWithoutAFailure) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 2, exec, s);
    JobWaits waits(e, metrics_);
    TaskHandle<absl::StatusOr<JobWaits::WaitResult>> wait =
        runtime::Spawn(waits.Wait(ids, runtime::ReturnWhen::kFirstException, std::nullopt));
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[0], 1, "a")).ok());
    co_await Settle();
    EXPECT_FALSE(wait.Done());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[1], 1, "b")).ok());
    absl::StatusOr<JobWaits::WaitResult> result = co_await wait;
    EXPECT_EQ(result->done.size(), 2u);
  });
}

TEST_F(JobWaitsTest, WaitAllCompletedTimeoutIsNotAnErrorAndCancelsNothing) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q"), Spec("q")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[2])).ok());
    JobWaits waits(e, metrics_);
    const runtime::TimePoint start = loop_.Now();
    absl::StatusOr<JobWaits::WaitResult> result = co_await waits.Wait(ids, runtime::ReturnWhen::kAllCompleted, In(5s));
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(loop_.Now() - start, 5s);
    EXPECT_EQ(IdsOf(result->done), IdList(ids[2]));
    EXPECT_EQ(result->pending, IdList(ids[0], ids[1]));
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

// ---- WaitFor ------------------------------------------------------------------------------

TEST_F(JobWaitsTest, WaitForReturnsTheResult) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 1, exec, s);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest request{.job_id = ids[0], .timeout = In(5s)};
    TaskHandle<absl::StatusOr<std::string>> wait = runtime::Spawn(waits.WaitFor(request));
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[0], 1, "42")).ok());
    absl::StatusOr<std::string> result = co_await wait;
    EXPECT_EQ(result.value_or("?"), "42");
  });
}

TEST_F(JobWaitsTest, WaitForAFailedJobIsAbortedWithItsError) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 1, exec, s);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest request{.job_id = ids[0]};
    TaskHandle<absl::StatusOr<std::string>> wait = runtime::Spawn(waits.WaitFor(request));
    EXPECT_TRUE(e.OnExecutorMessage(s, Fail(ids[0], 1, "no such file", "exit_status")).ok());
    absl::StatusOr<std::string> result = co_await wait;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted);
    EXPECT_EQ(result.status().message(), absl::StrCat("job ", ids[0], " FAILED: exit_status: no such file"));
  });
}

TEST_F(JobWaitsTest, WaitForTimeoutCancelsTheJob) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q")), false);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest request{.job_id = ids[0], .timeout = In(5s)};
    absl::StatusOr<std::string> result = co_await waits.WaitFor(request);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(result.status().message(), absl::StrCat("job \"", ids[0], "\" did not end in time; it was cancelled"));
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(JobWaitsTest, WaitForTimeoutLeavesAJobShieldedByTheRequestOrItsSpecRunning) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    cohort::v1::JobSpec shielded = Spec("q");
    shielded.set_shield(true);
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), shielded), false);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest by_request_shield{.job_id = ids[0], .timeout = In(1s), .shield = true};
    absl::StatusOr<std::string> by_request =
        co_await waits.WaitFor(by_request_shield);
    JobWaits::WaitForRequest by_spec_shield{.job_id = ids[1], .call_deadline = In(1s)};
    absl::StatusOr<std::string> by_spec = co_await waits.WaitFor(by_spec_shield);
    for (const absl::StatusOr<std::string>* r : std::vector{&by_request, &by_spec}) {
      EXPECT_EQ(r->status().code(), absl::StatusCode::kDeadlineExceeded);
      EXPECT_NE(r->status().message().find("it is shielded and keeps running"), std::string::npos) << r->status();
    }
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

// The call is cancelled (its client left) before any deadline: the job's fate is the
// request's cancel_on_disconnect.
TEST_F(JobWaitsTest, WaitForCancelledByItsCallerCancelsTheJobOnlyWithCancelOnDisconnect) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest kept_request{.job_id = ids[0], .call_deadline = In(9s)};
    TaskHandle<absl::StatusOr<std::string>> kept =
        runtime::Spawn(waits.WaitFor(kept_request));
    JobWaits::WaitForRequest asked_request{.job_id = ids[1], .call_deadline = In(9s), .cancel_on_disconnect = true};
    TaskHandle<absl::StatusOr<std::string>> asked = runtime::Spawn(
        waits.WaitFor(asked_request));
    co_await Settle();
    kept.Cancel();
    asked.Cancel();
    co_await Settle();
    EXPECT_TRUE(kept.Done() && kept.Cancelled());
    EXPECT_TRUE(asked.Done() && asked.Cancelled());
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
    EXPECT_EQ(e.GetJob(ids[1])->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

// The client saw its deadline pass a little before this clock did: that is a timeout.
TEST_F(JobWaitsTest, WaitForCancelledAtItsCallDeadlineCountsAsATimeout) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q")), false);
    JobWaits waits(e, metrics_);
    JobWaits::WaitForRequest request{.job_id = ids[0], .call_deadline = In(1s)};
    TaskHandle<absl::StatusOr<std::string>> wait =
        runtime::Spawn(waits.WaitFor(request));
    co_await runtime::Sleep(1s - JobWaits::kDeadlineSlack / 2);
    wait.Cancel();
    co_await Settle();
    EXPECT_TRUE(wait.Cancelled());
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_CANCELLED);
  });
}

TEST_F(JobWaitsTest, WaitForCancelledByTheServerShuttingDownNeverCancelsTheJob) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q")), false);
    JobWaits waits(e, metrics_);
    bool stopping = false;
    JobWaits::WaitForRequest request{.job_id = ids[0],
                       .call_deadline = In(1s),
                       .cancel_on_disconnect = true,
                       .server_stopping = [&stopping] { return stopping; }};
    TaskHandle<absl::StatusOr<std::string>> wait = runtime::Spawn(
        waits.WaitFor(request));
    co_await runtime::Sleep(1s - JobWaits::kDeadlineSlack / 2);  // even at its deadline
    stopping = true;
    wait.Cancel();
    co_await Settle();
    EXPECT_TRUE(wait.Cancelled());
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

// ---- AsCompleted --------------------------------------------------------------------------

TEST_F(JobWaitsTest, AsCompletedReturnsEndedJobsFirstThenEachAsItEndsEarliestFirst) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    FakeChannel exec;
    std::uint64_t s = 0;
    std::vector<std::string> ids = co_await SubmitRunning(e, 3, exec, s);
    std::string ended = (*co_await e.Submit(Batch(Spec("other")), false))[0];
    EXPECT_TRUE((co_await e.CancelJob(ended)).ok());
    AsCompletedJobs jobs(e, metrics_);
    EXPECT_TRUE((co_await jobs.Start(IdList(ids[0], ids[1], ids[2], ended), std::nullopt)).ok());
    absl::StatusOr<std::optional<JobOutcome>> first = co_await jobs.Next();
    EXPECT_EQ((*first)->job_id(), ended);
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[2], 1, "c")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[0], 1, "a")).ok());
    EXPECT_TRUE(e.OnExecutorMessage(s, Complete(ids[1], 1, "b")).ok());
    std::vector<std::string> order;
    while (true) {
      absl::StatusOr<std::optional<JobOutcome>> next = co_await jobs.Next();
      EXPECT_TRUE(next.ok()) << next.status();
      if (!next.ok() || !next->has_value()) break;
      order.push_back((*next)->job_id());
    }
    EXPECT_EQ(order, IdList(ids[2], ids[0], ids[1]));
  });
}

TEST_F(JobWaitsTest, AsCompletedTimeoutIsDeadlineExceededAfterWhatEnded) {
  WithEngine([this](BrokerEngine& e) -> Task<void> {
    std::vector<std::string> ids = *co_await e.Submit(Batch(Spec("q"), Spec("q")), false);
    EXPECT_TRUE((co_await e.CancelJob(ids[1])).ok());
    AsCompletedJobs jobs(e, metrics_);
    EXPECT_TRUE((co_await jobs.Start(ids, In(5s))).ok());
    absl::StatusOr<std::optional<JobOutcome>> first = co_await jobs.Next();
    EXPECT_EQ((*first)->job_id(), ids[1]);
    absl::StatusOr<std::optional<JobOutcome>> second = co_await jobs.Next();
    EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_EQ(second.status().message(), "timeout: 1 of 2 jobs ended");
    EXPECT_EQ(e.GetJob(ids[0])->state(), cohort::v1::JOB_STATE_QUEUED);
  });
}

}  // namespace
}  // namespace cohort::broker
