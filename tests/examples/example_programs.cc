#include "tests/examples/example_programs.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
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

namespace {

// FNV-1a 64 of the file's bytes, in hex: stable across runs, builds and machines.
absl::StatusOr<std::string> FileKey(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : bytes.str()) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(hash));
  return std::string(hex);
}

std::filesystem::path NodeModulesCacheRoot() {
  if (const char* root = std::getenv("COHORT_NODE_MODULES_CACHE"); root != nullptr && *root != '\0') return root;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "cohort" / "node-modules";
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr && *home != '\0' ? home : "/nonexistent") / ".cache" / "cohort" /
         "node-modules";
}

}  // namespace

absl::StatusOr<std::string> CachedNodeModules(const std::string& work_dir, absl::Duration timeout) {
  absl::StatusOr<std::string> key = FileKey(RunfilePath("examples/node/package-lock.json"));
  if (!key.ok()) return key.status();
  const std::filesystem::path entry = NodeModulesCacheRoot() / *key;
  std::error_code error;
  // The marker is written last, inside the entry before its rename: present means complete.
  if (std::filesystem::exists(entry / ".complete", error)) return (entry / "node_modules").string();

  if (absl::Status installed = InstallNodeModules(work_dir, timeout); !installed.ok()) return installed;
  const std::filesystem::path built = std::filesystem::path(work_dir) / "node_modules";
  // Publish: copy beside the entry, mark complete, rename into place. Best effort: a
  // read-only cache root (Bazel's sandbox) only means the next run installs again.
  const std::filesystem::path staging = NodeModulesCacheRoot() / absl::StrCat(".", *key, ".", getpid());
  std::filesystem::create_directories(staging, error);
  if (!error) {
    std::filesystem::copy(built, staging / "node_modules", std::filesystem::copy_options::recursive, error);
  }
  if (!error) std::ofstream(staging / ".complete") << "npm ci of package-lock.json " << *key << "\n";
  if (!error) std::filesystem::rename(staging, entry, error);  // a racing run may have won: fine
  if (error) {
    std::fprintf(stderr, "CachedNodeModules: not cached at %s (%s); using %s\n", entry.c_str(),
                 error.message().c_str(), built.c_str());
    std::error_code ignored;  // leftovers of a failed publish; the entry itself is untouched
    std::filesystem::remove_all(staging, ignored);
  }
  return built.string();
}

absl::StatusOr<std::unique_ptr<ChildProgram>> StartNodeClient(const std::string& node_modules_dir,
                                                              std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/node", RunfilePath("examples/node/client.js"),
                                   "--protos=" + RunfilesRoot()};
  argv.insert(argv.end(), args.begin(), args.end());
  return ChildProgram::Start(std::move(argv), {{"NODE_PATH", node_modules_dir}});
}

}  // namespace cohort::testing
