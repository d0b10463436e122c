// The README's main demo runs in CI: cohort-demo against a real cohort-dev, smaller
// (--jobs) so that it takes seconds, must pass every step and exit 0.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

// Runs `command` (a shell command line) to its end; returns its exit code (or -1 if it
// did not exit normally) and its stdout and stderr.
int RunToEnd(const std::string& command, std::string& output) {
  std::FILE* pipe = popen(absl::StrCat("exec ", command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(CohortDemo, PassesEveryStepAgainstCohortDevAndExitsZero) {
  TempDir dir("cohort-demo");
  absl::StatusOr<std::unique_ptr<ServiceProcess>> dev = ServiceProcess::Start(
      BinaryPath("services/dev/cohort-dev"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir.Path("data")});
  ASSERT_TRUE(dev.ok()) << dev.status();

  std::string output;
  const int code = RunToEnd(absl::StrJoin({BinaryPath("services/dev/cohort-demo"),
                                           absl::StrCat("--server=", (*dev)->grpc_address()), std::string("--jobs=600"),
                                           std::string("--batches=3"), std::string("--step-timeout=20s"),
                                           std::string("--progress=false")},
                                          " "),
                            output);
  EXPECT_EQ(code, 0) << output;
  EXPECT_TRUE(absl::StrContains(output, "All 5 steps passed.")) << output;
  EXPECT_TRUE(absl::StrContains(output, "SUCCEEDED 605")) << output;
  EXPECT_TRUE(absl::StrContains(output, "FAILED 1")) << output;
  EXPECT_TRUE(absl::StrContains(output, "CANCELLED 3")) << output;

  absl::StatusOr<int> exit = (*dev)->Terminate();
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
}

TEST(CohortDemo, SaysSoWhenCohortDevIsNotRunning) {
  std::string output;
  // Port 1 on loopback: nothing listens there.
  const int code = RunToEnd(absl::StrCat(BinaryPath("services/dev/cohort-demo"), " --server=127.0.0.1:1 --connect-timeout=200ms"), output);
  EXPECT_EQ(code, 2) << output;
  EXPECT_TRUE(absl::StrContains(output, "cannot reach cohort-dev at 127.0.0.1:1")) << output;
}

}  // namespace
}  // namespace cohort::testing
