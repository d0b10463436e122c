// The real cohort-broker, driven over gRPC by the test and by test executors.
#include <chrono>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

using cohort::v1::JobState;

TEST_F(BrokerTest, SubmittedJobIsAssignedCompletedAndVisible) {
  std::string id = Submit({Spec()})[0];
  EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
  TestExecutor exec(stub(), "exec-1", 1);
  exec.Grant(1);
  auto assign = exec.NextAssign();
  ASSERT_TRUE(assign.has_value());
  EXPECT_EQ(assign->job().id(), id);
  EXPECT_EQ(assign->attempt(), 1);
  EXPECT_EQ(assign->job().spec().payload(), "payload");
  exec.Complete(id, 1, "the result");
  // Wait for the completion through the broker itself.
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().WaitFor(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.result(), "the result");
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job.attempts(0).executor_id(), "exec-1");
}

TEST_F(BrokerTest, DroppedExecutorStreamRedeliversTheJobWhenItsLeaseRunsOutAndFencesTheOldAttempt) {
  StartBroker({"--lease=1s", "--heartbeat-interval=200ms"});
  cohort::v1::JobSpec spec = Spec();
  spec.set_max_attempts(3);
  std::string id = Submit({spec})[0];
  auto first = std::make_unique<TestExecutor>(stub(), "crashy", 1);
  first->Grant(1);
  auto assigned = first->NextAssign();
  ASSERT_TRUE(assigned.has_value());
  ASSERT_EQ(assigned->attempt(), 1);
  const auto dropped_at = std::chrono::steady_clock::now();
  first->Drop();  // mid-job, and "crashy" never comes back within the lease
  TestExecutor second(stub(), "steady", 1);
  second.Grant(1);
  auto redelivered = second.NextAssign();
  ASSERT_TRUE(redelivered.has_value());
  // Not at the drop: the attempt kept its lease for a reconnect that did not come.
  EXPECT_GE(std::chrono::steady_clock::now() - dropped_at, std::chrono::milliseconds(900));
  EXPECT_EQ(redelivered->job().id(), id);
  EXPECT_EQ(redelivered->attempt(), 2);
  EXPECT_EQ(redelivered->job().attempts(0).error().code(), "lease_expired");
  // A completion for attempt 1 (e.g. from a reconnected "crashy") is rejected.
  TestExecutor late(stub(), "crashy", 1);
  late.Complete(id, 1, "stale");
  second.Complete(id, 2, "fresh");
  cohort::v1::WaitForRequest req;
  req.set_job_id(id);
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  ASSERT_TRUE(stub().WaitFor(ctx.get(), req, &resp).ok());
  EXPECT_EQ(resp.result(), "fresh");
  EXPECT_GE(Metric("cohort_broker_stale_completions_total").value_or(0), 1);
  EXPECT_EQ(Metric("cohort_broker_jobs_redelivered_total{queue=\"default\"}").value_or(0), 1);
}

TEST_F(BrokerTest, HigherPriorityRunsFirstAcrossTheWire) {
  std::vector<std::string> ids = Submit({Spec("q", 0), Spec("q", 10), Spec("q", 5)});
  TestExecutor exec(stub(), "x", 3);
  exec.Grant(3);
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) order.push_back(exec.NextAssign()->job().id());
  EXPECT_EQ(order, (std::vector<std::string>{ids[1], ids[2], ids[0]}));
}

TEST_F(BrokerTest, BadInputGetsAClearStatusAndChangesNothing) {
  cohort::v1::SubmitRequest bad;
  *bad.add_jobs() = Spec("fine");
  *bad.add_jobs() = Spec("Not A Queue");
  cohort::v1::SubmitResponse ignored;
  auto ctx = Context();
  grpc::Status s = stub().Submit(ctx.get(), bad, &ignored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("jobs[1].queue"), std::string::npos) << s.error_message();

  cohort::v1::ListJobsRequest list;
  cohort::v1::ListJobsResponse listed;
  auto ctx2 = Context();
  ASSERT_TRUE(stub().ListJobs(ctx2.get(), list, &listed).ok());
  EXPECT_EQ(listed.jobs_size(), 0);  // all-or-nothing

  cohort::v1::GetJobRequest get;
  get.set_job_id("no-such-job");
  cohort::v1::GetJobResponse got;
  auto ctx3 = Context();
  EXPECT_EQ(stub().GetJob(ctx3.get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);

  cohort::v1::SubmitRequest too_big;
  cohort::v1::JobSpec big = Spec();
  big.set_payload(std::string((1 << 20) + 1, 'x'));
  *too_big.add_jobs() = big;
  auto ctx4 = Context();
  EXPECT_EQ(stub().Submit(ctx4.get(), too_big, &ignored).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id("no-such-job");
  cohort::v1::CancelJobResponse cancelled;
  auto ctx5 = Context();
  EXPECT_EQ(stub().CancelJob(ctx5.get(), cancel, &cancelled).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(BrokerTest, SubmitOverTheBatchLimitIsRejected) {
  StartBroker({"--max-submit-batch=2"});
  cohort::v1::SubmitRequest req;
  for (int i = 0; i < 3; ++i) *req.add_jobs() = Spec();
  cohort::v1::SubmitResponse resp;
  auto ctx = Context();
  grpc::Status s = stub().Submit(ctx.get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("limit per Submit is 2"), std::string::npos) << s.error_message();
}

TEST_F(BrokerTest, QueuesReportDepthAndPausedQueuesHoldTheirJobs) {
  Submit({Spec("mail", 1), Spec("mail", 1), Spec("mail", 7)});
  cohort::v1::PauseQueueRequest pause;
  pause.set_queue("mail");
  cohort::v1::PauseQueueResponse paused;
  auto ctx = Context();
  ASSERT_TRUE(stub().PauseQueue(ctx.get(), pause, &paused).ok());
  cohort::v1::ListQueuesResponse queues;
  auto ctx2 = Context();
  ASSERT_TRUE(stub().ListQueues(ctx2.get(), {}, &queues).ok());
  ASSERT_EQ(queues.queues_size(), 1);
  EXPECT_TRUE(queues.queues(0).paused());
  EXPECT_EQ(queues.queues(0).depth(), 3);
  EXPECT_EQ(queues.queues(0).depth_by_priority(0).priority(), 7);
  EXPECT_EQ(queues.queues(0).depth_by_priority(1).queued(), 2);
  EXPECT_TRUE(queues.queues(0).has_oldest_queued_age());
}

TEST_F(BrokerTest, JobsSurviveARestart) {
  std::vector<std::string> ids = Submit({Spec(), Spec()});
  auto code = broker_->Terminate();
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  StartBroker();
  for (const std::string& id : ids) EXPECT_EQ(Get(id).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(BrokerTest, WatchStreamsEventsFromASequence) {
  std::string id = Submit({Spec()})[0];
  cohort::v1::WatchRequest req;
  req.set_after_sequence(0);
  auto ctx = Context();
  auto reader = stub().Watch(ctx.get(), req);
  cohort::v1::WatchResponse batch;
  ASSERT_TRUE(reader->Read(&batch));
  ASSERT_GE(batch.events_size(), 1);
  EXPECT_EQ(batch.events(0).job_id(), id);
  EXPECT_EQ(batch.events(0).to_state(), cohort::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(batch.events(0).reason(), cohort::v1::TRANSITION_REASON_SUBMITTED);
  // A later change arrives on the same stream.
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  cohort::v1::CancelJobResponse cancelled;
  auto ctx2 = Context();
  ASSERT_TRUE(stub().CancelJob(ctx2.get(), cancel, &cancelled).ok());
  ASSERT_TRUE(reader->Read(&batch));
  EXPECT_EQ(batch.events(0).to_state(), cohort::v1::JOB_STATE_CANCELLED);
  ctx->TryCancel();
}

TEST_F(BrokerTest, BadFlagsExitNonZeroWithOneLine) {
  auto started = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), {"--listen=nope"});
  // It exited before the ready line, with code 2.
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
}

google::protobuf::Timestamp WallClockIn(std::chrono::milliseconds d) {
  const auto t = std::chrono::system_clock::now() + d;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  google::protobuf::Timestamp ts;
  ts.set_seconds(ns / 1'000'000'000);
  ts.set_nanos(static_cast<int32_t>(ns % 1'000'000'000));
  return ts;
}

TEST_F(BrokerTest, ARunningJobPastItsDeadlineFailsAndItsExecutorIsToldToStop) {
  cohort::v1::JobSpec spec = Spec();
  spec.set_max_attempts(3);
  *spec.mutable_deadline() = WallClockIn(std::chrono::milliseconds(1500));
  std::string id = Submit({spec})[0];
  TestExecutor exec(stub(), "exec-1", 1);
  exec.Grant(1);
  auto assign = exec.NextAssign();
  ASSERT_TRUE(assign.has_value());
  auto cancel = exec.NextCancel();  // sent once the failure is durable
  ASSERT_TRUE(cancel.has_value());
  EXPECT_EQ(cancel->job_id(), id);
  EXPECT_EQ(cancel->attempt(), 1);
  EXPECT_EQ(cancel->reason(), "deadline exceeded");
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.error().code(), "deadline_exceeded");
  EXPECT_EQ(job.attempts_size(), 1);  // not retried
}

TEST_F(BrokerTest, ADeadlineSurvivesABrokerRestartAndOnePastAtSubmitFailsAtOnce) {
  cohort::v1::JobSpec waiting = Spec("nobody-serves-this");
  *waiting.mutable_deadline() = WallClockIn(std::chrono::milliseconds(1500));
  cohort::v1::JobSpec late = Spec("nobody-serves-this");
  *late.mutable_deadline() = WallClockIn(std::chrono::milliseconds(-1000));
  std::vector<std::string> ids = Submit({waiting, late});
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(Get(ids[1]).state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(Get(ids[1]).error().code(), "deadline_exceeded");
  EXPECT_EQ(Get(ids[0]).state(), cohort::v1::JOB_STATE_QUEUED);
  StartBroker();  // the deadline timer lived in the old process only
  cohort::v1::WaitForRequest req;
  req.set_job_id(ids[0]);
  cohort::v1::WaitForResponse resp;
  auto ctx = Context();
  grpc::Status waited = stub().WaitFor(ctx.get(), req, &resp);
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::ABORTED) << waited.error_message();  // the job failed
  cohort::v1::Job job = Get(ids[0]);
  EXPECT_EQ(job.state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(job.error().code(), "deadline_exceeded");
  EXPECT_EQ(job.attempts_size(), 0);
}

}  // namespace
}  // namespace cohort::testing
