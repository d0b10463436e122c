// ChildProgram against /bin/sh: output capture, exit statuses, signals, deadlines and
// what a program leaves behind.
#include "tests/examples/child_program.h"

#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace cohort::testing {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(30);

std::unique_ptr<ChildProgram> Shell(const std::string& script, const std::map<std::string, std::string>& env = {},
                                    const std::string& cwd = "") {
  absl::StatusOr<std::unique_ptr<ChildProgram>> child = ChildProgram::Start({"/bin/sh", "-c", script}, env, cwd);
  EXPECT_TRUE(child.ok()) << child.status();
  return child.ok() ? std::move(*child) : nullptr;
}

TEST(ChildProgram, KeepsStdoutAsLinesAndStderrAsText) {
  std::unique_ptr<ChildProgram> child = Shell("echo one; echo two >&2; printf three");
  ASSERT_NE(child, nullptr);
  absl::StatusOr<int> exit = child->Wait(kTimeout);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
  EXPECT_EQ(child->lines(), (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(child->out(), "one\nthree\n");
  EXPECT_EQ(child->err(), "two\n");
}

TEST(ChildProgram, ReturnsTheExitCodeAgainOnEveryWait) {
  std::unique_ptr<ChildProgram> child = Shell("exit 3");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->Wait(kTimeout).value_or(-1), 3);
  EXPECT_EQ(child->Wait(kTimeout).value_or(-1), 3);
}

TEST(ChildProgram, PassesItsEnvironmentAndWorkingDirectory) {
  std::unique_ptr<ChildProgram> child = Shell("echo \"$GREETING\"; pwd", {{"GREETING", "hello there"}}, "/");
  ASSERT_NE(child, nullptr);
  ASSERT_EQ(child->Wait(kTimeout).value_or(-1), 0);
  EXPECT_EQ(child->lines(), (std::vector<std::string>{"hello there", "/"}));
}

TEST(ChildProgram, AwaitLineSkipsToTheLineWithThePrefix) {
  std::unique_ptr<ChildProgram> child = Shell("echo starting; echo ready on 42; echo after");
  ASSERT_NE(child, nullptr);
  absl::StatusOr<std::string> line = child->AwaitLine("ready", kTimeout);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, "ready on 42");
  EXPECT_EQ(child->AwaitLine("after", kTimeout).value_or(""), "after");
  EXPECT_EQ(child->AwaitLine("more", kTimeout).status().code(), absl::StatusCode::kNotFound);
}

TEST(ChildProgram, AwaitLineGivesUpAtItsDeadline) {
  std::unique_ptr<ChildProgram> child = Shell("echo quiet; exec sleep 60");
  ASSERT_NE(child, nullptr);
  absl::StatusOr<std::string> line = child->AwaitLine("never", absl::Milliseconds(200));
  EXPECT_EQ(line.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(line.status().message(), "quiet")) << line.status();
}

TEST(ChildProgram, ReportsDeathBySignal) {
  std::unique_ptr<ChildProgram> child = Shell("echo up; exec sleep 60");
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->AwaitLine("up", kTimeout).ok());
  child->Signal(SIGTERM);
  absl::StatusOr<int> exit = child->Wait(kTimeout);
  EXPECT_EQ(exit.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(absl::StrContains(exit.status().message(), "signal 15")) << exit.status();
}

TEST(ChildProgram, WaitKillsAChildStillRunningAtTheDeadline) {
  std::unique_ptr<ChildProgram> child = Shell("exec sleep 60");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->Wait(absl::Milliseconds(200)).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(ChildProgram, WaitDoesNotHangOnWhatTheChildLeftRunning) {
  // The background sleep holds the pipes open; it dies with the process group.
  std::unique_ptr<ChildProgram> child = Shell("sleep 60 & echo done");
  ASSERT_NE(child, nullptr);
  EXPECT_EQ(child->Wait(kTimeout).value_or(-1), 0);
  EXPECT_EQ(child->lines(), std::vector<std::string>{"done"});
}

TEST(ChildProgram, AMissingProgramIsNotFound) {
  absl::StatusOr<std::unique_ptr<ChildProgram>> child = ChildProgram::Start({"/nonexistent/program"});
  EXPECT_EQ(child.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ChildProgram::Start({}).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cohort::testing
