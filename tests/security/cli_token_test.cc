// cohortctl token create against a running broker: the token is printed once, only its
// hash reaches the token file, and the broker picks the new entry up without a restart.
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(CliToken, ACreatedTokenWorksOnARunningBrokerAndIsStoredOnlyAsAHash) {
  TempDir dir;
  const std::string tokens = dir.path() + "/tokens";
  std::ofstream(tokens) << "# no tokens yet\n";
  auto broker = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"),
                                      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                       "--data-dir=" + dir.path() + "/broker", "--auth-tokens=" + tokens});
  ASSERT_TRUE(broker.ok()) << broker.status();
  const std::string cohortctl = BinaryPath("services/cli/cohortctl");
  const std::string server = "--server=" + (*broker)->grpc_address();

  absl::StatusOr<Exited> created = RunToExit(
      cohortctl, {"token", "create", "--principal=ci", "--scopes=submit,read", "--tokens-file=" + tokens});
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->exit_code, 0) << created->stderr_text;
  const std::string token(absl::StripAsciiWhitespace(created->stdout_text));
  ASSERT_EQ(token.rfind("cohort_", 0), 0u) << token;
  EXPECT_EQ(ReadFile(tokens).find(token), std::string::npos);
  EXPECT_NE(ReadFile(tokens).find("principal=ci scopes=submit,read"), std::string::npos);

  // The broker re-reads the file at most once a second: the first calls may still say
  // UNAUTHENTICATED (exit 3).
  absl::StatusOr<Exited> listed;
  for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
    listed = RunToExit(cohortctl, {server, "--token=" + token, "queues"});
    ASSERT_TRUE(listed.ok()) << listed.status();
    if (listed->exit_code == 0) break;
    EXPECT_NE(listed->stderr_text.find("UNAUTHENTICATED"), std::string::npos) << listed->stderr_text;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the broker's recheck interval is 1 s
  }
  EXPECT_EQ(listed->exit_code, 0) << listed->stderr_text;
  EXPECT_EQ(listed->stderr_text.find(token), std::string::npos);

  // The scopes hold: no `admin`, no pause.
  absl::StatusOr<Exited> paused = RunToExit(cohortctl, {server, "--token=" + token, "queues", "pause", "default"});
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->exit_code, 3);
  EXPECT_NE(paused->stderr_text.find("PERMISSION_DENIED"), std::string::npos) << paused->stderr_text;
  EXPECT_NE(paused->stderr_text.find("lacks scope admin"), std::string::npos) << paused->stderr_text;
}

}  // namespace
}  // namespace cohort::testing
