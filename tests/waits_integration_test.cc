// Gather, Wait, WaitFor, AsCompleted and CancelJob against the real broker, one test
// per row of design.md's semantics table, each built so that a wrong implementation
// fails (e.g. jobs finish in the reverse of submission order).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;

class WaitsTest : public BrokerTest {
 protected:
  // Submits n jobs and leases them all to `exec`; returns (id, attempt) in submission order.
  std::vector<std::string> SubmitAndLease(TestExecutor& exec, int n) {
    std::vector<cohort::v1::JobSpec> specs(n, Spec());
    std::vector<std::string> ids = Submit(specs);
    exec.Grant(n);
    for (int i = 0; i < n; ++i) EXPECT_TRUE(exec.NextAssign().has_value());
    return ids;
  }
};

TEST_F(WaitsTest, GatherReturnsResultsInRequestOrderWhenJobsFinishInReverse) {
  TestExecutor exec(stub(), "x", 3);
  std::vector<std::string> ids = SubmitAndLease(exec, 3);
  cohort::v1::GatherRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  cohort::v1::GatherResponse resp;
  auto ctx = Context();
  std::thread finisher([&] {
    for (int i = 2; i >= 0; --i) exec.Complete(ids[i], 1, "r" + std::to_string(i));
  });
  grpc::Status s = stub().Gather(ctx.get(), req, &resp);
  finisher.join();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.outcomes_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(resp.outcomes(i).job_id(), ids[i]);
    EXPECT_EQ(resp.outcomes(i).result(), "r" + std::to_string(i));
  }
}

TEST_F(WaitsTest, GatherWithoutReturnExceptionsEndsAtTheFirstFailureWhileOthersRun) {
  TestExecutor exec(stub(), "x", 2);
  std::vector<std::string> ids = SubmitAndLease(exec, 2);
  exec.Fail(ids[1], 1, "disk full");
  cohort::v1::GatherRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  cohort::v1::GatherResponse resp;
  auto ctx = Context();
  grpc::Status s = stub().Gather(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(s.error_message().find(ids[1]), std::string::npos);
  EXPECT_NE(s.error_message().find("disk full"), std::string::npos);
  EXPECT_EQ(Get(ids[0]).state(), cohort::v1::JOB_STATE_RUNNING);  // not cancelled
  exec.Complete(ids[0], 1, "later");
  req.set_return_exceptions(true);
  auto ctx2 = Context();
  ASSERT_TRUE(stub().Gather(ctx2.get(), req, &resp).ok());
  EXPECT_EQ(resp.outcomes(0).result(), "later");
  EXPECT_EQ(resp.outcomes(1).state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(resp.outcomes(1).error().message(), "disk full");
}

TEST_F(WaitsTest, WaitFirstCompletedReturnsAsSoonAsOneEndsAndTheRestArePending) {
  TestExecutor exec(stub(), "x", 3);
  std::vector<std::string> ids = SubmitAndLease(exec, 3);
  exec.Complete(ids[2], 1, "quick");
  cohort::v1::WaitRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  req.set_return_when(cohort::v1::RETURN_WHEN_FIRST_COMPLETED);
  cohort::v1::WaitResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().Wait(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.done_size(), 1);
  EXPECT_EQ(resp.done(0).job_id(), ids[2]);
  EXPECT_EQ(std::vector<std::string>(resp.pending().begin(), resp.pending().end()),
            (std::vector<std::string>{ids[0], ids[1]}));
  EXPECT_EQ(Get(ids[0]).state(), cohort::v1::JOB_STATE_RUNNING);
}

TEST_F(WaitsTest, WaitFirstExceptionWithoutAFailureBehavesAsAllCompleted) {
  TestExecutor exec(stub(), "x", 2);
  std::vector<std::string> ids = SubmitAndLease(exec, 2);
  cohort::v1::WaitRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  req.set_return_when(cohort::v1::RETURN_WHEN_FIRST_EXCEPTION);
  cohort::v1::WaitResponse resp;
  auto ctx = Context();
  std::thread finisher([&] {
    exec.Complete(ids[0], 1, "a");
    exec.Complete(ids[1], 1, "b");
  });
  ASSERT_TRUE(stub().Wait(ctx.get(), req, &resp).ok());
  finisher.join();
  EXPECT_EQ(resp.done_size(), 2);
  EXPECT_EQ(resp.pending_size(), 0);
}

TEST_F(WaitsTest, WaitTimeoutReturnsWhatIsDoneAndCancelsNothing) {
  std::vector<std::string> ids = Submit({Spec(), Spec()});  // no executor: nothing ends
  cohort::v1::WaitRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  req.mutable_timeout()->set_nanos(100'000'000);
  cohort::v1::WaitResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().Wait(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.done_size(), 0);
  EXPECT_EQ(resp.pending_size(), 2);
  EXPECT_EQ(Get(ids[0]).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(WaitsTest, WaitForTimeoutCancelsAQueuedJobSoItNeverRuns) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  req.mutable_timeout()->set_nanos(100'000'000);
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  EXPECT_EQ(stub().WaitFor(ctx.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_CANCELLED);
  TestExecutor exec(stub(), "x", 1);
  exec.Grant(1);
  Submit({Spec()});  // a job that may run, to show the cancelled one is skipped
  EXPECT_NE(exec.NextAssign()->job().id(), id);
}

TEST_F(WaitsTest, WaitForTimeoutTellsTheExecutorToStopARunningJob) {
  TestExecutor exec(stub(), "x", 1);
  std::string id = SubmitAndLease(exec, 1)[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  req.mutable_timeout()->set_nanos(100'000'000);
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  EXPECT_EQ(stub().WaitFor(ctx.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  auto cancel = exec.NextCancel();
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->job_id(), id);
  exec.Fail(id, 1, "stopped");
  cohort::v1::WaitRequest wait;
  wait.add_job_ids(id);
  cohort::v1::WaitResponse done;
  auto ctx2 = Context();
  ASSERT_TRUE(stub().Wait(ctx2.get(), wait, &done).ok());
  EXPECT_EQ(done.done(0).state(), cohort::v1::JOB_STATE_CANCELLED);
}

TEST_F(WaitsTest, ShieldedJobsSurviveAWaitForTimeout) {
  cohort::v1::JobSpec shielded = Spec();
  shielded.set_shield(true);
  std::vector<std::string> ids = Submit({shielded, Spec()});
  cohort::v1::WaitForRequest req;
  req.mutable_timeout()->set_nanos(50'000'000);
  cohort::v1::WaitForResponse resp;
  req.set_job_id(ids[0]);  // shielded by its spec
  auto ctx = Context();
  EXPECT_EQ(stub().WaitFor(ctx.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  req.set_job_id(ids[1]);  // shielded by the request
  req.set_shield(true);
  auto ctx2 = Context();
  EXPECT_EQ(stub().WaitFor(ctx2.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(Get(ids[0]).state(), cohort::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Get(ids[1]).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(WaitsTest, AsCompletedStreamsEarliestFirstWithFinishedJobsFirst) {
  TestExecutor exec(stub(), "x", 3);
  std::vector<std::string> ids = SubmitAndLease(exec, 3);
  exec.Complete(ids[1], 1, "first");
  cohort::v1::WaitForRequest settle;  // make sure ids[1] ended before the call
  settle.set_job_id(ids[1]);
  cohort::v1::WaitForResponse settled;
  auto ctx0 = Context();
  ASSERT_TRUE(stub().WaitFor(ctx0.get(), settle, &settled).ok());
  cohort::v1::AsCompletedRequest req;
  for (const auto& id : ids) req.add_job_ids(id);
  auto ctx = Context();
  auto reader = stub().AsCompleted(ctx.get(), req);
  cohort::v1::AsCompletedResponse msg;
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.outcome().job_id(), ids[1]);
  exec.Complete(ids[2], 1, "second");
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.outcome().job_id(), ids[2]);
  exec.Complete(ids[0], 1, "third");
  ASSERT_TRUE(reader->Read(&msg));
  EXPECT_EQ(msg.outcome().job_id(), ids[0]);
  EXPECT_FALSE(reader->Read(&msg));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(WaitsTest, CancellingAnEndedJobSaysSoAndChangesNothing) {
  TestExecutor exec(stub(), "x", 1);
  std::string id = SubmitAndLease(exec, 1)[0];
  exec.Complete(id, 1, "done");
  cohort::v1::WaitForRequest wait;
  wait.set_job_id(id);
  cohort::v1::WaitForResponse waited;
  auto ctx0 = Context();
  ASSERT_TRUE(stub().WaitFor(ctx0.get(), wait, &waited).ok());
  cohort::v1::CancelJobRequest req;
  req.set_job_id(id);
  cohort::v1::CancelJobResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().CancelJob(ctx.get(), req, &resp).ok());
  EXPECT_TRUE(resp.already_ended());
  EXPECT_EQ(resp.state(), cohort::v1::JOB_STATE_SUCCEEDED);
}

TEST_F(WaitsTest, DuplicateIdsAreAllowedAndEachSlotGetsTheResult) {
  TestExecutor exec(stub(), "x", 1);
  std::string id = SubmitAndLease(exec, 1)[0];
  exec.Complete(id, 1, "same");
  cohort::v1::GatherRequest req;
  req.add_job_ids(id);
  req.add_job_ids(id);
  cohort::v1::GatherResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().Gather(ctx.get(), req, &resp).ok());
  ASSERT_EQ(resp.outcomes_size(), 2);
  EXPECT_EQ(resp.outcomes(1).result(), "same");
}

TEST_F(WaitsTest, BadWaitRequestsAreRejectedBeforeAnythingWaits) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitResponse resp;
  cohort::v1::WaitRequest empty;
  auto c1 = Context();
  EXPECT_EQ(stub().Wait(c1.get(), empty, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  cohort::v1::WaitRequest unknown;
  unknown.add_job_ids(id);
  unknown.add_job_ids("ghost-1");
  auto c2 = Context();
  grpc::Status s = stub().Wait(c2.get(), unknown, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("ghost-1"), std::string::npos);
  cohort::v1::WaitRequest negative;
  negative.add_job_ids(id);
  negative.mutable_timeout()->set_seconds(-1);
  auto c3 = Context();
  EXPECT_EQ(stub().Wait(c3.get(), negative, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  cohort::v1::WaitRequest bad_when;
  bad_when.add_job_ids(id);
  bad_when.set_return_when(static_cast<cohort::v1::ReturnWhen>(42));
  auto c4 = Context();
  EXPECT_EQ(stub().Wait(c4.get(), bad_when, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Metric("cohort_broker_waiters").value_or(-1), 0);
}

TEST_F(WaitsTest, AClientThatLeavesMidWaitLeavesNoWaiterBehind) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitRequest req;
  req.add_job_ids(id);
  cohort::v1::WaitResponse resp;
  auto ctx = Context(200ms);  // the client gives up; the job never ends
  EXPECT_EQ(stub().Wait(ctx.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The broker notices asynchronously; poll its own metric with a bound.
  std::optional<double> waiters;
  for (int i = 0; i < 1000; ++i) {
    waiters = Metric("cohort_broker_waiters");
    if (waiters == 0) break;
  }
  EXPECT_EQ(waiters, 0);
}

// A WaitFor with no request timeout, run on its own thread until the broker ends it.
class WaitForCall {
 public:
  WaitForCall(cohort::v1::Broker::Stub& stub, cohort::v1::WaitForRequest req)
      : req_(std::move(req)) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    thread_ = std::thread([this, &stub] { status_ = stub.WaitFor(&ctx_, req_, &resp_); });
  }
  ~WaitForCall() { Join(); }
  grpc::ClientContext& context() { return ctx_; }
  grpc::Status Join() {
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  grpc::ClientContext ctx_;
  cohort::v1::WaitForRequest req_;
  cohort::v1::WaitForResponse resp_;
  grpc::Status status_;
  std::thread thread_;
};

TEST_F(WaitsTest, ABrokerRestartDuringAWaitForLeavesTheJobToRunAfterwards) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);  // no timeout: only the (distant) gRPC deadline
  req.set_cancel_on_disconnect(true);  // not even this makes a shutdown cancel the job
  {
    WaitForCall call(stub(), req);
    ASSERT_TRUE(AwaitMetric("cohort_broker_waiters", 1));
    absl::StatusOr<int> exit = broker_->Terminate();
    ASSERT_TRUE(exit.ok()) << exit.status();
    EXPECT_EQ(*exit, 0);
    EXPECT_NE(call.Join().error_code(), grpc::StatusCode::OK);
  }
  StartBroker();
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_QUEUED) << job.error().message();
  TestExecutor exec(stub(), "x", 1);
  exec.Grant(1);
  std::optional<cohort::v1::BrokerMessage::Assign> assign = exec.NextAssign();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->job().id(), id);
  exec.Complete(id, assign->attempt(), "ran after the restart");
  std::optional<cohort::v1::JobOutcome> end = AwaitEnd(id);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(end->result(), "ran after the restart");
}

TEST_F(WaitsTest, AWaitForCallerThatCancelsCancelsNoJobByDefault) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  WaitForCall call(stub(), req);
  ASSERT_TRUE(AwaitMetric("cohort_broker_waiters", 1));
  call.context().TryCancel();  // Ctrl-C, or a killed client
  EXPECT_EQ(call.Join().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(AwaitMetric("cohort_broker_waiters", 0));  // the broker has handled the cancel
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(WaitsTest, AWaitForWithCancelOnDisconnectCancelsItsJobWhenTheCallerCancels) {
  cohort::v1::JobSpec shielded = Spec();
  shielded.set_shield(true);
  std::vector<std::string> ids = Submit({Spec(), shielded});
  for (const std::string& id : ids) {
    cohort::v1::WaitForRequest req;
    req.set_job_id(id);
    req.set_cancel_on_disconnect(true);
    WaitForCall call(stub(), req);
    ASSERT_TRUE(AwaitMetric("cohort_broker_waiters", 1));
    call.context().TryCancel();
    EXPECT_EQ(call.Join().error_code(), grpc::StatusCode::CANCELLED);
    ASSERT_TRUE(AwaitMetric("cohort_broker_waiters", 0));
  }
  std::optional<cohort::v1::JobOutcome> end = AwaitEnd(ids[0]);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->state(), cohort::v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(Get(ids[1]).state(), cohort::v1::JOB_STATE_QUEUED);  // shielded by its spec
}

TEST_F(WaitsTest, TheGrpcDeadlineOfAWaitForIsItsTimeoutAndCancelsTheJob) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);  // no request timeout
  cohort::v1::WaitForResponse resp;
  auto ctx = Context(300ms);
  EXPECT_EQ(stub().WaitFor(ctx.get(), req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  std::optional<cohort::v1::JobOutcome> end = AwaitEnd(id);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->state(), cohort::v1::JOB_STATE_CANCELLED);
}

TEST_F(WaitsTest, AWaitTimeoutTooLargeForANanosecondCountIsRefusedNotAnInstantTimeout) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  req.mutable_timeout()->set_seconds(10'000'000'000);  // ~317 years: overflowed to "now"
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  grpc::Status status = stub().WaitFor(ctx.get(), req, &resp);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
  req.mutable_timeout()->set_seconds(1);
  req.mutable_timeout()->set_nanos(2'000'000'000);  // not a valid Duration
  auto ctx2 = Context();
  EXPECT_EQ(stub().WaitFor(ctx2.get(), req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // The longest timeout allowed (100 years) waits instead of returning at once.
  cohort::v1::WaitRequest wait;
  wait.add_job_ids(id);
  wait.mutable_timeout()->set_seconds(std::int64_t{100} * 365 * 86400);
  cohort::v1::WaitResponse waited;
  auto ctx3 = Context(300ms);
  EXPECT_EQ(stub().Wait(ctx3.get(), wait, &waited).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
}

}  // namespace
}  // namespace cohort::testing
