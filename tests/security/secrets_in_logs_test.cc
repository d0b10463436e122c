// Payloads, results and tokens stay out of the services' logs, even at debug level: a
// job with a recognisable payload (echoed back as its result) runs through a real broker
// and executor that authenticate with tokens, a call presents an unknown token, and
// neither process's output (stdout and stderr) holds any of them afterwards.
#include <fstream>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using auth::Principal;

constexpr char kPayload[] = "payload-4f1c9e-not-for-logs";
constexpr char kClientToken[] = "cohort_client-secret-7d2a";
constexpr char kExecutorToken[] = "cohort_executor-secret-91b0";
constexpr char kUnknownToken[] = "cohort_stolen-secret-c3e8";

// Starts `binary` with its stderr merged into the stdout ServiceProcess keeps.
std::unique_ptr<ServiceProcess> StartLogging(const std::string& binary, std::vector<std::string> args) {
  args.insert(args.begin(), {"-c", "exec \"$0\" \"$@\" 2>&1", BinaryPath(binary), "--log-level=debug"});
  auto process = ServiceProcess::Start("/bin/sh", args);
  EXPECT_TRUE(process.ok()) << binary << ": " << process.status();
  return process.ok() ? std::move(*process) : nullptr;
}

std::unique_ptr<cohort::v1::Broker::Stub> Stub(const std::string& address, const std::string& token) {
  auth::ClientSecurityOptions options;
  options.token = token;
  return cohort::v1::Broker::NewStub(*auth::MakeChannel(address, options));
}

TEST(SecretsInLogs, PayloadsResultsAndTokensNeverReachTheLogs) {
  TempDir dir;
  std::ofstream(dir.path() + "/tokens")
      << auth::TokenFileLine(kClientToken, Principal{"client", *auth::ParseScopes("submit,read,cancel"), "", {}}) << "\n"
      << auth::TokenFileLine(kExecutorToken, Principal{"executor", *auth::ParseScopes("execute"), "logs-*", {}})
      << "\n";
  std::ofstream(dir.path() + "/executor.token") << kExecutorToken << "\n";
  auto broker = StartLogging("services/broker/cohort-broker",
                             {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/b",
                              "--auth-tokens=" + dir.path() + "/tokens"});
  ASSERT_NE(broker, nullptr);
  auto executor = StartLogging("services/executor/cohort-executor",
                               {"--broker=" + broker->grpc_address(), "--listen=127.0.0.1:0",
                                "--metrics-listen=127.0.0.1:0", "--capacity=1", "--executor-id=logs-executor",
                                "--broker-token-file=" + dir.path() + "/executor.token"});
  ASSERT_NE(executor, nullptr);

  auto client = Stub(broker->grpc_address(), kClientToken);
  cohort::v1::SubmitRequest submit;
  submit.add_jobs()->set_kind("builtin.echo");
  submit.mutable_jobs(0)->set_queue("default");
  submit.mutable_jobs(0)->set_payload(kPayload);
  cohort::v1::SubmitResponse submitted;
  {
    grpc::ClientContext ctx;
    grpc::Status s = client->Submit(&ctx, submit, &submitted);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  cohort::v1::WaitForRequest wait;
  wait.set_job_id(submitted.job_ids(0));
  wait.mutable_timeout()->set_seconds(30);
  cohort::v1::WaitForResponse waited;
  {
    grpc::ClientContext ctx;
    grpc::Status s = client->WaitFor(&ctx, wait, &waited);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(waited.result(), kPayload);
  {
    grpc::ClientContext ctx;
    cohort::v1::ListQueuesResponse queues;
    EXPECT_EQ(Stub(broker->grpc_address(), kUnknownToken)->ListQueues(&ctx, {}, &queues).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }

  ASSERT_TRUE(executor->Terminate().ok());
  ASSERT_TRUE(broker->Terminate().ok());
  for (ServiceProcess* process : {broker.get(), executor.get()}) {
    const std::string output = absl::StrJoin(process->output(), "\n");
    EXPECT_NE(output.find(" INFO "), std::string::npos) << "no log lines: the check would prove nothing\n" << output;
    for (const char* secret : {kPayload, "client-secret", "executor-secret", "stolen-secret"}) {
      EXPECT_EQ(output.find(secret), std::string::npos) << secret << " in\n" << output;
    }
  }
}

}  // namespace
}  // namespace cohort::testing
