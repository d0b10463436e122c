// examples/node/client.js against a real cluster, its dependencies installed by `npm ci`
// from the committed lockfile as on a fresh clone (once per lockfile: see
// CachedNodeModules): it prints what the Python client prints (gather in order, wait
// with FIRST_COMPLETED).
#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/examples/child_program.h"
#include "tests/examples/example_cluster.h"
#include "tests/examples/example_programs.h"

namespace cohort::testing {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(60);

class NodeClientTest : public ::testing::Test {
 protected:
  // At most one `npm ci` for the whole suite (none when the lockfile's modules are cached).
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    absl::StatusOr<std::string> modules =
        CachedNodeModules(std::string(tmp != nullptr ? tmp : "/tmp") + "/node-example", absl::Minutes(3));
    installed_ = modules.status();
    if (modules.ok()) node_modules_ = *modules;
  }

  void SetUp() override { ASSERT_TRUE(installed_.ok()) << installed_; }

  // Runs client.js with `args` to its end.
  std::unique_ptr<ChildProgram> RunNodeClient(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<ChildProgram>> client = StartNodeClient(node_modules_, args);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    absl::StatusOr<int> exit = (*client)->Wait(kTimeout);
    EXPECT_TRUE(exit.ok()) << exit.status();
    exit_code_ = exit.value_or(-1);
    return std::move(*client);
  }

  static inline std::string node_modules_;
  static inline absl::Status installed_;
  int exit_code_ = -1;
};

TEST_F(NodeClientTest, PrintsWhatThePythonClientPrints) {
  absl::StatusOr<std::unique_ptr<ExampleCluster>> cluster = StartExampleCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  const std::string server = "--server=" + (*cluster)->address();

  std::unique_ptr<ChildProgram> node = RunNodeClient({server, "--count=6"});
  ASSERT_NE(node, nullptr);
  ASSERT_EQ(exit_code_, 0) << node->err();
  EXPECT_EQ(node->lines(), ExpectedClientLines(6));

  absl::StatusOr<std::unique_ptr<ChildProgram>> python = StartPython("client.py", {server, "--count=6"});
  ASSERT_TRUE(python.ok()) << python.status();
  absl::StatusOr<int> exit = (*python)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_EQ(*exit, 0) << (*python)->err();
  EXPECT_EQ(node->out(), (*python)->out());
}

TEST_F(NodeClientTest, ReportsAnUnreachableBrokerInOneLineAndExitsOne) {
  // Port 1 is privileged and nothing here serves it: connecting is refused at once.
  std::unique_ptr<ChildProgram> node = RunNodeClient({"--server=127.0.0.1:1"});
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(exit_code_, 1);
  EXPECT_TRUE(node->lines().empty());
  EXPECT_TRUE(absl::StartsWith(node->err(), "client.js: Submit failed: UNAVAILABLE: ")) << node->err();
  EXPECT_EQ(std::count(node->err().begin(), node->err().end(), '\n'), 1);
}

TEST_F(NodeClientTest, RejectsABadCountWithExitTwo) {
  std::unique_ptr<ChildProgram> node = RunNodeClient({"--count=0"});
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(exit_code_, 2);
  EXPECT_TRUE(absl::StartsWith(node->err(), "client.js: --count must be in 1..1000\n")) << node->err();
}

}  // namespace
}  // namespace cohort::testing
