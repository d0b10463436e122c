// The Node examples against a real cluster, on @cohort/client installed by `npm ci` from
// its committed lockfile as on a fresh clone (once for the suite): client.js prints what
// the Python client prints (gather in order, wait with FIRST_COMPLETED); worker.js runs
// its kinds and drains on SIGTERM.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/examples/child_program.h"
#include "tests/examples/example_cluster.h"
#include "tests/examples/example_programs.h"

namespace cohort::testing {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(60);

class NodeClientTest : public ::testing::Test {
 protected:
  // One `npm ci` for the whole suite.
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    absl::StatusOr<std::string> path = InstallNodeSdk(std::string(tmp != nullptr ? tmp : "/tmp") + "/node-sdk",
                                                      absl::Minutes(5));
    installed_ = path.status();
    if (path.ok()) node_path_ = *path;
  }

  void SetUp() override { ASSERT_TRUE(installed_.ok()) << installed_; }

  // Runs client.js with `args` to its end.
  std::unique_ptr<ChildProgram> RunNodeClient(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<ChildProgram>> client = StartNode(node_path_, "client.js", args);
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return nullptr;
    absl::StatusOr<int> exit = (*client)->Wait(kTimeout);
    EXPECT_TRUE(exit.ok()) << exit.status();
    exit_code_ = exit.value_or(-1);
    return std::move(*client);
  }

  static inline std::string node_path_;
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

TEST_F(NodeClientTest, WorkerRunsItsKindsAndDrainsOnSigterm) {
  absl::StatusOr<std::unique_ptr<ExampleCluster>> cluster = StartExampleCluster();
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  absl::StatusOr<std::unique_ptr<ChildProgram>> worker = StartNode(
      node_path_, "worker.js", {"--broker=" + (*cluster)->address(), "--queue=node", "--executor-id=node-example"});
  ASSERT_TRUE(worker.ok()) << worker.status();

  cohort::v1::SubmitRequest submit;
  for (const auto& [kind, payload] : {std::pair<std::string, std::string>{"node.upper", "hello"}, {"node.sleep", "500"}}) {
    cohort::v1::JobSpec* spec = submit.add_jobs();
    spec->set_queue("node");
    spec->set_kind(kind);
    spec->set_payload(payload);
  }
  cohort::v1::SubmitResponse submitted;
  grpc::ClientContext submit_context;
  ASSERT_TRUE((*cluster)->stub().Submit(&submit_context, submit, &submitted).ok());
  cohort::v1::GatherRequest gather;
  *gather.mutable_job_ids() = submitted.job_ids();
  cohort::v1::GatherResponse gathered;
  grpc::ClientContext gather_context;
  gather_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  ASSERT_TRUE((*cluster)->stub().Gather(&gather_context, gather, &gathered).ok());
  EXPECT_EQ(gathered.outcomes(0).result(), "HELLO");
  EXPECT_EQ(gathered.outcomes(1).result(), "slept 500ms");

  (*worker)->Signal(SIGTERM);
  absl::StatusOr<int> exit = (*worker)->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0) << (*worker)->err();
  EXPECT_TRUE(absl::StrContains((*worker)->err(), "connected as node-example: queues=node kinds=node.sleep,node.upper "))
      << (*worker)->err();
  EXPECT_TRUE(absl::StrContains((*worker)->err(), "draining (SIGTERM): 0 running\nstopped\n")) << (*worker)->err();
}

}  // namespace
}  // namespace cohort::testing
