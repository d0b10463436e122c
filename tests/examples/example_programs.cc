#include "tests/examples/example_programs.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
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

absl::StatusOr<std::unique_ptr<ChildProgram>> StartPython(std::string_view script, std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/python3", RunfilePath("examples/python/" + std::string(script))};
  argv.insert(argv.end(), args.begin(), args.end());
  return ChildProgram::Start(std::move(argv), {{"PYTHONPATH", RunfilePath("examples/python/stubs")},
                                               {"PYTHONDONTWRITEBYTECODE", "1"}});
}

std::vector<std::string> ExpectedClientLines(int count) {
  std::vector<std::string> lines = {absl::StrCat("submitted ", count, " builtin.echo jobs to queue examples")};
  for (int i = 0; i < count; ++i) lines.push_back(absl::StrCat("gather[", i, "] = hello ", i));
  lines.push_back("wait FIRST_COMPLETED: done=[sleep 100ms SUCCEEDED] pending=[sleep 60s, sleep 60s]");
  lines.push_back("cancelled 2 pending jobs");
  return lines;
}

absl::Status InstallNodeModules(const std::string& dir, absl::Duration timeout) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  for (const char* file : {"package.json", "package-lock.json"}) {
    if (!error) {
      std::filesystem::copy_file(RunfilePath(absl::StrCat("examples/node/", file)),
                                 std::filesystem::path(dir) / file,
                                 std::filesystem::copy_options::overwrite_existing, error);
    }
  }
  if (error) return absl::InternalError(absl::StrCat("cannot prepare ", dir, ": ", error.message()));
  // npm is a Node script: run it with the node we test with, whatever PATH says.
  absl::StatusOr<std::unique_ptr<ChildProgram>> npm = ChildProgram::Start(
      {"/usr/bin/node", "/usr/bin/npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev"},
      {{"npm_config_cache", dir + "/.npm-cache"}, {"npm_config_update_notifier", "false"}}, dir);
  if (!npm.ok()) return npm.status();
  absl::StatusOr<int> exit = (*npm)->Wait(timeout);
  if (!exit.ok()) return exit.status();
  if (*exit != 0) {
    return absl::UnavailableError(
        absl::StrCat("npm ci exited ", *exit, "; stdout:\n", (*npm)->out(), "stderr:\n", (*npm)->err()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<ChildProgram>> StartNodeClient(const std::string& node_modules_dir,
                                                              std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/node", RunfilePath("examples/node/client.js"),
                                   "--protos=" + RunfilesRoot()};
  argv.insert(argv.end(), args.begin(), args.end());
  return ChildProgram::Start(std::move(argv), {{"NODE_PATH", node_modules_dir}});
}

}  // namespace cohort::testing
