// Executor identity against a real broker with a token file: a credential can only
// connect as the executor ids its pattern allows, and a second stream for a connected
// id from another principal is refused instead of taking the executor's jobs.
#include <fstream>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/metrics_scrape.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using auth::Principal;

class ExecutorIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream tokens(dir_.path() + "/tokens");
    auto grant = [&](const std::string& token, const std::string& name, const std::string& scopes,
                     const std::string& executor) {
      tokens << auth::TokenFileLine(token, Principal{name, *auth::ParseScopes(scopes), executor, {}}) << "\n";
    };
    grant("client", "client", "submit,read,cancel", "");
    grant("worker-a", "worker-a", "execute", "worker-a");
    grant("worker-b", "worker-b", "execute", "worker-b*");
    grant("fleet", "fleet", "execute", "worker-*");
    tokens.close();
    std::ofstream(dir_.path() + "/worker-a.token") << "worker-a\n";
    auto broker = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                                        {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                         "--data-dir=" + dir_.path() + "/broker", "--auth-tokens=" + dir_.path() + "/tokens"});
    ASSERT_TRUE(broker.ok()) << broker.status();
    broker_ = std::move(*broker);
    auto executor = ServiceProcess::Start(
        BinaryPath("services/executor/cohort-executor"),
        {"--broker=" + broker_->grpc_address(), "--broker-token-file=" + dir_.path() + "/worker-a.token",
         "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--capacity=1", "--executor-id=worker-a"});
    ASSERT_TRUE(executor.ok()) << executor.status();
    executor_ = std::move(*executor);
    client_ = Stub("client");
    for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
      executors_ = ListExecutors();
      if (executors_.executors_size() == 1) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the broker for the executor
    }
    ASSERT_EQ(executors_.executors_size(), 1);
  }

  std::unique_ptr<cohort::v1::Broker::Stub> Stub(const std::string& token) {
    auth::ClientSecurityOptions options;
    options.token = token;
    return cohort::v1::Broker::NewStub(*auth::MakeChannel(broker_->grpc_address(), options));
  }

  cohort::v1::ListExecutorsResponse ListExecutors() {
    cohort::v1::ListExecutorsResponse response;
    grpc::ClientContext ctx;
    EXPECT_TRUE(client_->ListExecutors(&ctx, {}, &response).ok());
    return response;
  }

  // Opens a Connect stream with `token`, says hello as `executor_id` and returns how
  // the broker ends the stream (or OK if it welcomed it).
  grpc::Status Impersonate(const std::string& token, const std::string& executor_id) {
    auto stub = Stub(token);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    auto stream = stub->Connect(&ctx);
    cohort::v1::ExecutorMessage hello;
    hello.mutable_hello()->set_executor_id(executor_id);
    hello.mutable_hello()->set_capacity(1);
    stream->Write(hello);
    cohort::v1::ExecutorMessage credit;
    credit.mutable_credit()->set_credits(1);
    stream->Write(credit);
    cohort::v1::BrokerMessage message;
    if (stream->Read(&message) && message.has_welcome()) {
      ctx.TryCancel();
      stream->Finish().error_code();  // cancelled by us: the welcome was the answer
      return grpc::Status::OK;
    }
    return stream->Finish();
  }

  void ExpectTheRealExecutorStillRunsJobs() {
    cohort::v1::SubmitRequest submit;
    submit.add_jobs()->set_kind("builtin.echo");
    submit.mutable_jobs(0)->set_queue("default");
    submit.mutable_jobs(0)->set_payload("for the real worker-a");
    cohort::v1::SubmitResponse submitted;
    {
      grpc::ClientContext ctx;
      ASSERT_TRUE(client_->Submit(&ctx, submit, &submitted).ok());
    }
    cohort::v1::WaitForRequest wait;
    wait.set_job_id(submitted.job_ids(0));
    wait.mutable_timeout()->set_seconds(30);
    cohort::v1::WaitForResponse waited;
    grpc::ClientContext ctx;
    grpc::Status s = client_->WaitFor(&ctx, wait, &waited);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(waited.result(), "for the real worker-a");
    // The job names who submitted it and the executor principal that ran it.
    cohort::v1::GetJobRequest get;
    get.set_job_id(submitted.job_ids(0));
    cohort::v1::GetJobResponse job;
    {
      grpc::ClientContext get_ctx;
      ASSERT_TRUE(client_->GetJob(&get_ctx, get, &job).ok());
    }
    EXPECT_EQ(job.job().submitted_by(), "client");
    ASSERT_EQ(job.job().attempts_size(), 1);
    EXPECT_EQ(job.job().attempts(0).executor_principal(), "worker-a");
    EXPECT_EQ(job.job().attempts(0).executor_id(), "worker-a");
    cohort::v1::ListExecutorsResponse now = ListExecutors();
    ASSERT_EQ(now.executors_size(), 1);
    EXPECT_EQ(now.executors(0).executor_id(), "worker-a");
    EXPECT_EQ(now.executors(0).connect_time().SerializeAsString(),
              executors_.executors(0).connect_time().SerializeAsString());  // the same stream
  }

  TempDir dir_;
  std::unique_ptr<ServiceProcess> broker_, executor_;
  std::unique_ptr<cohort::v1::Broker::Stub> client_;
  cohort::v1::ListExecutorsResponse executors_;
};

TEST_F(ExecutorIdentityTest, AHelloWithAnIdOutsideTheCredentialsPatternIsRefused) {
  grpc::Status s = Impersonate("worker-b", "worker-a");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("executor pattern"), std::string::npos) << s.error_message();
  ExpectTheRealExecutorStillRunsJobs();
}

TEST_F(ExecutorIdentityTest, AnotherPrincipalCannotTakeOverAConnectedExecutorId) {
  grpc::Status s = Impersonate("fleet", "worker-a");  // its pattern matches, its principal differs
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("another principal"), std::string::npos) << s.error_message();
  ExpectTheRealExecutorStillRunsJobs();
  absl::StatusOr<std::string> metrics = ScrapeMetrics(broker_->metrics_address());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(MetricValue(*metrics, "cohort_broker_auth_denied_total{method=\"/cohort.v1.Broker/Connect\","
                                  "reason=\"executor_not_allowed\"}"),
            1);
}

TEST_F(ExecutorIdentityTest, ACredentialWithoutExecuteCannotConnectAtAll) {
  EXPECT_EQ(Impersonate("client", "worker-a").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  ExpectTheRealExecutorStillRunsJobs();
}

TEST_F(ExecutorIdentityTest, ACredentialConnectsAsAnIdItsPatternAllows) {
  EXPECT_EQ(Impersonate("worker-b", "worker-b-2").error_code(), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace cohort::testing
