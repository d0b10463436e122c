// A server asked to listen beyond loopback without TLS refuses to start (exit 2) unless
// --insecure is given, and then says so on stderr.
#include "absl/strings/str_join.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

struct Binary {
  const char* path;
  std::vector<std::string> extra;
};

TEST(InsecureBind, EveryServerRefusesPlaintextOnAllInterfacesWithoutInsecure) {
  TempDir dir;
  for (const Binary& b : {Binary{"services/broker/cohort-broker", {"--data-dir=" + dir.path() + "/b"}},
                          Binary{"services/scheduler/cohort-scheduler", {"--data-dir=" + dir.path() + "/s"}},
                          Binary{"services/executor/cohort-executor", {}},
                          Binary{"services/dev/cohort-dev", {"--data-dir=" + dir.path() + "/d", "--console-listen="}}}) {
    std::vector<std::string> args = {"--listen=0.0.0.0:0", "--metrics-listen=127.0.0.1:0"};
    args.insert(args.end(), b.extra.begin(), b.extra.end());
    absl::StatusOr<Exited> run = RunToExit(BinaryPath(b.path), args);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 2) << b.path;
    EXPECT_NE(run->stderr_text.find("--listen 0.0.0.0:0 is reachable from other machines"), std::string::npos)
        << run->stderr_text;
    EXPECT_NE(run->stderr_text.find("--insecure"), std::string::npos) << run->stderr_text;
  }
}

// With --insecure the broker serves plaintext on every interface, and says so on
// stderr (merged into the output the test reads) before its ready line.
TEST(InsecureBind, InsecureServesPlaintextOnAllInterfacesAndSaysSo) {
  TempDir dir;
  auto broker = ServiceProcess::Start(
      "/bin/sh", {"-c", "exec \"$0\" \"$@\" 2>&1", BinaryPath("services/broker/cohort-broker"), "--listen=0.0.0.0:0",
                  "--insecure", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path() + "/b"});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string address = (*broker)->grpc_address();
  ASSERT_EQ(address.rfind("0.0.0.0:", 0), 0u) << address;
  bool warned = false;
  for (const std::string& line : (*broker)->output()) {
    warned = warned || line == "cohort-broker: serving plaintext gRPC on 0.0.0.0:0 (--insecure): anyone who reaches "
                               "it can read and forge calls";
  }
  EXPECT_TRUE(warned) << absl::StrJoin((*broker)->output(), "\n");
  auto stub = cohort::v1::Broker::NewStub(grpc::CreateChannel("127.0.0.1:" + address.substr(address.find(':') + 1),
                                                              grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  cohort::v1::ListQueuesResponse queues;
  EXPECT_TRUE(stub->ListQueues(&ctx, {}, &queues).ok());
}

TEST(InsecureBind, TokensWithoutTlsAreRefusedOffLoopbackEvenWithInsecure) {
  TempDir dir;
  absl::StatusOr<Exited> run =
      RunToExit(BinaryPath("services/broker/cohort-broker"),
                {"--listen=0.0.0.0:0", "--insecure", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.path(),
                 "--auth-tokens=" + dir.path() + "/tokens"});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 2);
  EXPECT_NE(run->stderr_text.find("bearer tokens must not cross the network in plaintext"), std::string::npos)
      << run->stderr_text;
}

}  // namespace
}  // namespace cohort::testing
