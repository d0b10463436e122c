// The real cohort-executor working for the real cohort-broker: built-in kinds, cancel,
// timeout, capacity and drain on SIGTERM.
#include <unistd.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/broker_fixture.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"

namespace cohort::testing {
namespace {

class ExecutorTest : public BrokerTest {
 protected:
  void StartExecutor(int capacity, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--broker=" + broker_->grpc_address(), "--listen=127.0.0.1:0",
                                     "--metrics-listen=127.0.0.1:0", "--executor-id=exec-under-test",
                                     "--capacity=" + std::to_string(capacity)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    executor_ = std::move(*started);
  }

  cohort::v1::JobSpec Kind(const std::string& kind, const std::string& payload) {
    cohort::v1::JobSpec s = Spec();
    s.set_kind(kind);
    s.set_payload(payload);
    return s;
  }

  grpc::Status WaitFor(const std::string& id, cohort::v1::WaitForResponse* resp) {
    cohort::v1::WaitForRequest req;
    req.set_job_id(id);
    auto ctx = Context();
    return stub().WaitFor(ctx.get(), req, resp);
  }

  // Waits (bounded) until the broker reports the job in `state`.
  bool AwaitState(const std::string& id, cohort::v1::JobState state) {
    cohort::v1::WatchRequest req;
    auto ctx = Context(std::chrono::seconds(20));
    auto reader = stub().Watch(ctx.get(), req);
    if (Get(id).state() == state) return true;
    cohort::v1::WatchResponse batch;
    while (reader->Read(&batch)) {
      for (const auto& e : batch.events()) {
        if (e.job_id() == id && e.to_state() == state) return true;
      }
    }
    return false;
  }

  std::unique_ptr<ServiceProcess> executor_;
};

TEST_F(ExecutorTest, BuiltinEchoRunsAndItsResultComesBack) {
  StartExecutor(2);
  std::string id = Submit({Kind("builtin.echo", "hello from a job")})[0];
  cohort::v1::WaitForResponse resp;
  ASSERT_TRUE(WaitFor(id, &resp).ok());
  EXPECT_EQ(resp.result(), "hello from a job");
  EXPECT_EQ(Get(id).attempts(0).executor_id(), "exec-under-test");
}

TEST_F(ExecutorTest, BuiltinFailEndsTheJobFailedWithItsMessage) {
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.fail", "no such customer")})[0];
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(Get(id).error().message(), "no such customer");
}

TEST_F(ExecutorTest, CancellingARunningJobStopsItPromptly) {
  StartExecutor(1);
  std::string id = Submit({Kind("builtin.sleep", "1h")})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_RUNNING));
  cohort::v1::CancelJobRequest cancel;
  cancel.set_job_id(id);
  cohort::v1::CancelJobResponse cancelled;
  auto ctx = Context();
  ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_CANCELLED));
  EXPECT_EQ(Get(id).error().code(), "cancelled");
}

TEST_F(ExecutorTest, CancelArrivingRightBehindItsAssignmentStillEndsTheJob) {
  StartExecutor(1);
  for (int i = 0; i < 20; ++i) {  // races the Cancel against the Assign in the executor
    std::string id = Submit({Kind("builtin.sleep", "1h")})[0];
    cohort::v1::CancelJobRequest cancel;
    cancel.set_job_id(id);
    cohort::v1::CancelJobResponse cancelled;
    auto ctx = Context();
    ASSERT_TRUE(stub().CancelJob(ctx.get(), cancel, &cancelled).ok());
    ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_CANCELLED)) << "job " << i << " never ended";
  }
}

TEST_F(ExecutorTest, AnAttemptPastItsTimeoutFails) {
  StartExecutor(1);
  cohort::v1::JobSpec slow = Kind("builtin.sleep", "1h");
  slow.mutable_timeout()->set_nanos(200'000'000);
  std::string id = Submit({slow})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "timeout");
}

TEST_F(ExecutorTest, CapacityBoundsTheAttemptsRunningAtOnce) {
  StartExecutor(2);
  std::vector<std::string> ids = Submit({Kind("builtin.sleep", "1h"), Kind("builtin.sleep", "1h"),
                                         Kind("builtin.sleep", "1h")});
  ASSERT_TRUE(AwaitState(ids[1], cohort::v1::JOB_STATE_RUNNING));
  cohort::v1::ListExecutorsResponse executors;
  auto ctx = Context();
  ASSERT_TRUE(stub().ListExecutors(ctx.get(), {}, &executors).ok());
  ASSERT_EQ(executors.executors_size(), 1);
  EXPECT_EQ(executors.executors(0).running(), 2);
  EXPECT_EQ(Get(ids[2]).state(), cohort::v1::JOB_STATE_QUEUED);
}

TEST_F(ExecutorTest, SigtermDrainsRunningAttemptsThenExitsZero) {
  StartExecutor(1, {"--drain-grace=30s"});
  std::string id = Submit({Kind("builtin.sleep", "500ms")})[0];
  // The executor itself must have started the attempt (an Assign still in flight at
  // SIGTERM is handed back to the queue instead): poll its own gauge, bounded.
  std::optional<double> running;
  for (int i = 0; i < 2000 && running != 1; ++i) {
    auto body = ScrapeMetrics(executor_->metrics_address());
    if (body.ok()) running = MetricValue(*body, "cohort_executor_running");
  }
  ASSERT_EQ(running, 1);
  auto code = executor_->Terminate(absl::Seconds(20));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  cohort::v1::WaitForResponse resp;
  grpc::Status waited = WaitFor(id, &resp);
  ASSERT_TRUE(waited.ok()) << waited.error_message() << "\n" << Get(id).DebugString();  // finished during the drain
  EXPECT_EQ(resp.result(), "500ms");
}

cohort::v1::JobSpec Exec(std::vector<std::string> argv, const std::string& payload = "") {
  cohort::v1::JobSpec s;
  s.set_queue("default");
  s.set_kind("exec");
  s.set_payload(payload);
  for (auto& a : argv) s.mutable_command()->add_argv(std::move(a));
  return s;
}

TEST_F(ExecutorTest, ExecJobReadsThePayloadOnStdinAndItsStdoutIsTheResult) {
  StartExecutor(1, {"--allow-exec=/bin/cat"});
  std::string id = Submit({Exec({"/bin/cat"}, "piped through a real process")})[0];
  cohort::v1::WaitForResponse resp;
  grpc::Status s = WaitFor(id, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.result(), "piped through a real process");
}

TEST_F(ExecutorTest, CommandOutsideTheAllowlistNeverStarts) {
  StartExecutor(1, {"--allow-exec=/bin/cat", "--allow-exec=/bin/echo"});
  std::string marker = dir_.path() + "/must-not-exist";
  std::string id = Submit({Exec({"/bin/sh", "-c", "touch " + marker})})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.error().code(), "not_allowed");
  EXPECT_NE(job.error().message().find("/bin/sh"), std::string::npos) << job.error().message();
  EXPECT_NE(access(marker.c_str(), F_OK), 0);  // nothing ran
}

TEST_F(ExecutorTest, NonZeroExitIsAFailureWithItsCodeAndStderr) {
  StartExecutor(1, {"--allow-exec=/bin/sh"});
  std::string id = Submit({Exec({"/bin/sh", "-c", "echo boom >&2; exit 3"})})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  cohort::v1::Job job = Get(id);
  EXPECT_EQ(job.error().code(), "exit_status");
  EXPECT_NE(job.error().message().find("3"), std::string::npos) << job.error().message();
  EXPECT_NE(job.error().details().find("boom"), std::string::npos);
}

TEST_F(ExecutorTest, ExecPastItsTimeoutIsKilledAndFails) {
  StartExecutor(1, {"--allow-exec=/bin/sh", "--kill-grace=200ms"});
  cohort::v1::JobSpec slow = Exec({"/bin/sh", "-c", "sleep 600"});
  slow.mutable_timeout()->set_nanos(200'000'000);
  std::string id = Submit({slow})[0];
  ASSERT_TRUE(AwaitState(id, cohort::v1::JOB_STATE_FAILED));
  EXPECT_EQ(Get(id).error().code(), "timeout");
}

TEST_F(ExecutorTest, BadFlagsExitNonZeroWithOneLine) {
  auto started = ServiceProcess::Start(BinaryPath("services/executor/cohort-executor"), {"--capacity=0"});
  EXPECT_EQ(started.status().code(), absl::StatusCode::kUnavailable) << started.status();
  EXPECT_NE(std::string(started.status().message()).find("exit code 2"), std::string::npos) << started.status();
}

}  // namespace
}  // namespace cohort::testing
