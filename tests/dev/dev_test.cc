// cohort-dev end to end: the real binary on port 0 with a temp data directory, driven
// over gRPC like any client.
#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using cohort::v1::JobSpec;

class CohortDevTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(); }

  // Starts (or restarts, on the same data directory) cohort-dev.
  void Start(std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                     "--data-dir=" + dir_.Path("data"), "--capacity=3"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    absl::StatusOr<std::unique_ptr<ServiceProcess>> dev =
        ServiceProcess::Start(BinaryPath("services/dev/cohort-dev"), args);
    ASSERT_TRUE(dev.ok()) << dev.status();
    dev_ = std::move(*dev);
    stub_ = cohort::v1::Broker::NewStub(
        grpc::CreateChannel(dev_->grpc_address(), grpc::InsecureChannelCredentials()));
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return ctx;
  }

  std::vector<std::string> Submit(const std::vector<JobSpec>& specs) {
    cohort::v1::SubmitRequest request;
    for (const JobSpec& spec : specs) *request.add_jobs() = spec;
    cohort::v1::SubmitResponse response;
    grpc::Status status = stub_->Submit(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    // One entry per spec even after a failure (see BrokerTest::Submit).
    std::vector<std::string> ids(response.job_ids().begin(), response.job_ids().end());
    ids.resize(specs.size());
    return ids;
  }

  cohort::v1::GatherResponse Gather(const std::vector<std::string>& ids) {
    cohort::v1::GatherRequest request;
    for (const std::string& id : ids) request.add_job_ids(id);
    request.set_return_exceptions(true);
    cohort::v1::GatherResponse response;
    grpc::Status status = stub_->Gather(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static JobSpec Echo(const std::string& payload) {
    JobSpec spec;
    spec.set_queue("dev");
    spec.set_kind("builtin.echo");
    spec.set_payload(payload);
    return spec;
  }

  static JobSpec Exec(std::vector<std::string> argv) {
    JobSpec spec;
    spec.set_queue("dev");
    spec.set_kind("exec");
    for (const std::string& arg : argv) spec.mutable_command()->add_argv(arg);
    return spec;
  }

  TempDir dir_{"cohort-dev"};
  std::unique_ptr<ServiceProcess> dev_;
  std::unique_ptr<cohort::v1::Broker::Stub> stub_;
};

TEST_F(CohortDevTest, RunsBuiltinAndAllowedExecJobs) {
  const std::vector<std::string> ids = Submit({Echo("hello from echo"), Exec({"/bin/echo", "hello", "from", "exec"})});
  ASSERT_EQ(ids.size(), 2u);
  const cohort::v1::GatherResponse gathered = Gather(ids);
  ASSERT_EQ(gathered.outcomes_size(), 2);
  EXPECT_EQ(gathered.outcomes(0).state(), cohort::v1::JOB_STATE_SUCCEEDED) << gathered.outcomes(0).ShortDebugString();
  EXPECT_EQ(gathered.outcomes(0).result(), "hello from echo");
  EXPECT_EQ(gathered.outcomes(1).state(), cohort::v1::JOB_STATE_SUCCEEDED) << gathered.outcomes(1).ShortDebugString();
  EXPECT_EQ(gathered.outcomes(1).result(), "hello from exec\n");
}

TEST_F(CohortDevTest, DefaultAllowlistRefusesAShell) {
  const std::vector<std::string> ids = Submit({Exec({"/bin/sh", "-c", "echo no"})});
  const cohort::v1::GatherResponse gathered = Gather(ids);
  ASSERT_EQ(gathered.outcomes_size(), 1);
  EXPECT_EQ(gathered.outcomes(0).state(), cohort::v1::JOB_STATE_FAILED);
  EXPECT_EQ(gathered.outcomes(0).error().code(), "not_allowed") << gathered.outcomes(0).ShortDebugString();
}

TEST_F(CohortDevTest, RetriesAreReleasedByTheEmbeddedScheduler) {
  JobSpec spec = Echo("always fails");
  spec.set_kind("builtin.fail");
  spec.set_max_attempts(2);
  spec.mutable_backoff()->mutable_initial()->set_nanos(50'000'000);
  const std::vector<std::string> ids = Submit({spec});
  const cohort::v1::GatherResponse gathered = Gather(ids);
  ASSERT_EQ(gathered.outcomes_size(), 1);
  EXPECT_EQ(gathered.outcomes(0).state(), cohort::v1::JOB_STATE_FAILED);
  cohort::v1::GetJobRequest get;
  get.set_job_id(ids[0]);
  cohort::v1::GetJobResponse job;
  ASSERT_TRUE(stub_->GetJob(Context().get(), get, &job).ok());
  EXPECT_EQ(job.job().attempts_size(), 2) << job.job().ShortDebugString();
}

TEST_F(CohortDevTest, ServesOneMetricsPageForAllThreeParts) {
  Gather(Submit({Echo("counted")}));
  absl::StatusOr<std::string> body = ScrapeMetrics(dev_->metrics_address());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(MetricValue(*body, "cohort_broker_jobs_submitted_total{queue=\"dev\"}"), 1.0) << *body;
  EXPECT_EQ(MetricValue(*body, "cohort_executor_capacity"), 3.0);
  EXPECT_EQ(MetricValue(*body, "cohort_executor_connected"), 1.0);
  EXPECT_TRUE(MetricValue(*body, "cohort_scheduler_pending_jobs").has_value());
}

TEST_F(CohortDevTest, SigtermExitsZeroAndARestartFindsEveryJob) {
  const std::vector<std::string> ids = Submit({Echo("kept"), Exec({"/bin/echo", "kept too"})});
  Gather(ids);
  // Queued behind nothing but never run: a paused queue keeps it QUEUED across the restart.
  cohort::v1::CreateQueueRequest create;  // a queue that starts paused
  create.set_queue("held");
  create.set_paused(true);
  cohort::v1::CreateQueueResponse created;
  ASSERT_TRUE(stub_->CreateQueue(Context().get(), create, &created).ok());
  JobSpec held = Echo("held");
  held.set_queue("held");
  const std::vector<std::string> held_ids = Submit({held});

  absl::StatusOr<int> exit = dev_->Terminate();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);

  Start();
  for (const std::string& id : ids) {
    cohort::v1::GetJobRequest get;
    get.set_job_id(id);
    cohort::v1::GetJobResponse job;
    grpc::Status status = stub_->GetJob(Context().get(), get, &job);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(job.job().state(), cohort::v1::JOB_STATE_SUCCEEDED);
  }
  cohort::v1::GetJobRequest get;
  get.set_job_id(held_ids[0]);
  cohort::v1::GetJobResponse job;
  ASSERT_TRUE(stub_->GetJob(Context().get(), get, &job).ok());
  EXPECT_EQ(job.job().state(), cohort::v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job.job().spec().payload(), "held");
}

TEST(CohortDevFlags, BadFlagsExitTwoWithOneLineNamingTheFlag) {
  TempDir dir("cohort-dev-flags");
  struct Case {
    std::vector<std::string> args;
    std::string flag;  // the flag the one line must name
  };
  const std::vector<Case> cases = {
      {{"--listen=nope"}, "--listen"},
      {{"--capacity=0"}, "--capacity"},
      {{"--allow-exec=relative/path"}, "--allow-exec"},
      {{"--heartbeat-interval=1m", "--lease=30s"}, "--heartbeat-interval"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> all = {"--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.Path("data")};
    all.insert(all.end(), c.args.begin(), c.args.end());
    absl::StatusOr<Exited> run = RunToExit(BinaryPath("services/dev/cohort-dev"), all);
    ASSERT_TRUE(run.ok()) << c.flag << ": " << run.status();
    EXPECT_EQ(run->exit_code, 2) << c.flag << ": " << run->stderr_text;
    EXPECT_EQ(run->stdout_text, "") << c.flag;
    // One line, "cohort-dev: <the flag> ...", and nothing else.
    EXPECT_TRUE(absl::StartsWith(run->stderr_text, "cohort-dev: " + c.flag)) << run->stderr_text;
    EXPECT_TRUE(absl::EndsWith(run->stderr_text, "\n")) << run->stderr_text;
    EXPECT_EQ(std::count(run->stderr_text.begin(), run->stderr_text.end(), '\n'), 1) << run->stderr_text;
  }
}

}  // namespace
}  // namespace cohort::testing
