#include "tests/examples/example_programs.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace cohort::testing {
namespace {

// The runfiles root: $TEST_SRCDIR/$TEST_WORKSPACE (Bazel 4).
std::string RunfilesRoot() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  if (srcdir == nullptr || *srcdir == '\0') {
    std::fprintf(stderr, "TEST_SRCDIR is not set; run the test with bazel test\n");
    std::abort();
  }
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (workspace == nullptr || *workspace == '\0') workspace = "cohort";
  return std::filesystem::absolute(std::filesystem::path(srcdir) / workspace).string();
}

}  // namespace

std::string RunfilePath(std::string_view workspace_relative) {
  std::string path = RunfilesRoot() + "/" + std::string(workspace_relative);
  if (access(path.c_str(), F_OK) != 0) {
    std::fprintf(stderr, "RunfilePath: %s is not in the runfiles; add its target to the test's data = [...]\n",
                 path.c_str());
    std::abort();
  }
  return path;
}

namespace {

// Runs `/bin/sh tests/examples/<script> <dest>` to its end.
absl::Status RunInstaller(std::string_view script, const std::string& dest, absl::Duration timeout) {
  absl::StatusOr<std::unique_ptr<ChildProgram>> installer =
      ChildProgram::Start({"/bin/sh", RunfilePath("tests/examples/" + std::string(script)), dest});
  if (!installer.ok()) return installer.status();
  absl::StatusOr<int> exit = (*installer)->Wait(timeout);
  if (!exit.ok()) return exit.status();
  if (*exit != 0) {
    return absl::UnavailableError(absl::StrCat(std::string(script), " exited ", *exit, "; stdout:\n", (*installer)->out(),
                                               "stderr:\n", (*installer)->err()));
  }
  return absl::OkStatus();
}

std::string TestTmpDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// The Python SDK's site directory, installed on first use.
absl::StatusOr<std::string> PythonSdkSite() {
  static const absl::StatusOr<std::string>* const site = [] {
    const std::string dest = absl::StrCat(TestTmpDir(), "/python-sdk-", getpid());
    absl::Status installed = RunInstaller("install_python_sdk.sh", dest, absl::Minutes(3));
    return new absl::StatusOr<std::string>(installed.ok() ? absl::StatusOr<std::string>(dest + "/site")
                                                          : absl::StatusOr<std::string>(installed));
  }();
  return *site;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProgram>> StartPython(std::string_view script, std::vector<std::string> args) {
  absl::StatusOr<std::string> site = PythonSdkSite();
  if (!site.ok()) return site.status();
  std::vector<std::string> argv = {"/usr/bin/python3", RunfilePath("examples/python/" + std::string(script))};
  argv.insert(argv.end(), args.begin(), args.end());
  return ChildProgram::Start(std::move(argv), {{"PYTHONPATH", *site}, {"PYTHONDONTWRITEBYTECODE", "1"}});
}

std::vector<std::string> ExpectedClientLines(int count) {
  std::vector<std::string> lines = {absl::StrCat("submitted ", count, " builtin.echo jobs to queue examples")};
  for (int i = 0; i < count; ++i) lines.push_back(absl::StrCat("gather[", i, "] = hello ", i));
  lines.push_back("wait FIRST_COMPLETED: done=[sleep 100ms SUCCEEDED] pending=[sleep 60s, sleep 60s]");
  lines.push_back("cancelled 2 pending jobs");
  return lines;
}

absl::StatusOr<std::string> InstallNodeSdk(const std::string& dir, absl::Duration timeout) {
  if (absl::Status s = RunInstaller("install_node_sdk.sh", dir, timeout); !s.ok()) return s;
  return dir + "/path";
}

absl::StatusOr<std::unique_ptr<ChildProgram>> StartNode(const std::string& node_path, std::string_view script,
                                                        std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/node", RunfilePath("examples/node/" + std::string(script))};
  argv.insert(argv.end(), args.begin(), args.end());
  return ChildProgram::Start(std::move(argv), {{"NODE_PATH", node_path}});
}

}  // namespace cohort::testing
