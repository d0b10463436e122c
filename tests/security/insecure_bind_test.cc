// A server asked to listen beyond loopback without TLS refuses to start (exit 2) unless
// --insecure says so, and then says so on stderr.
#include "gtest/gtest.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
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
                          Binary{"services/executor/cohort-executor", {}}}) {
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
