#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/examples/child_program.h"

namespace cohort::testing {

// How a test runs the programs under examples/, from its Bazel runfiles. The test's
// `data` must list //examples/python:python (scripts and generated stubs) for the
// Python programs, and //examples/node:node plus //protos/cohort/v1:broker_protos for
// the Node client. The interpreters are Debian's: /usr/bin/python3 (with its
// python3-grpcio and python3-protobuf), /usr/bin/node and /usr/bin/npm.

// The absolute path of a file in the test's runfiles, given its workspace path
// ("examples/node/package.json"). Aborts, naming the path, if the file is not there:
// a missing `data` entry is a build mistake.
std::string RunfilePath(std::string_view workspace_relative);

// Starts `/usr/bin/python3 examples/python/<script> <args>` with the generated stubs on
// PYTHONPATH.
absl::StatusOr<std::unique_ptr<ChildProgram>> StartPython(std::string_view script, std::vector<std::string> args);

// What examples/python/client.py and examples/node/client.js print when all goes
// well, run with --count=`count`.
std::vector<std::string> ExpectedClientLines(int count);

// Installs the Node example's dependencies into `dir` as a user would on a fresh clone:
// copies package.json and package-lock.json there and runs `npm ci` (from the npm
// registry, with an npm cache inside `dir`). Errors carry npm's output.
absl::Status InstallNodeModules(const std::string& dir, absl::Duration timeout);

// The Node example's node_modules for this lockfile, installed at most once per
// lockfile: a directory keyed by a hash of package-lock.json under the cache root
// ($COHORT_NODE_MODULES_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/cohort/node-modules)
// is used as is when a complete one exists; otherwise InstallNodeModules runs in
// `work_dir` and its result is published to the cache (atomically, by rename) if the
// cache root is writable, and used from `work_dir` if not (e.g. in Bazel's sandbox
// without --sandbox_writable_path). Returns the node_modules directory to use; errors as
// InstallNodeModules'.
absl::StatusOr<std::string> CachedNodeModules(const std::string& work_dir, absl::Duration timeout);

// Starts `/usr/bin/node examples/node/client.js <args>`, its modules taken from
// `node_modules_dir` (see CachedNodeModules) and the protos from the runfiles.
absl::StatusOr<std::unique_ptr<ChildProgram>> StartNodeClient(const std::string& node_modules_dir,
                                                              std::vector<std::string> args);

}  // namespace cohort::testing
