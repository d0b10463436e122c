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

// How a test runs the programs under examples/, from its Bazel runfiles. The programs
// use the SDKs, installed as a user would: the Python one with pip (the test's `data`
// lists //examples/python, //clients/python, the protos and install_python_sdk.sh), the
// Node one with `npm ci` (//examples/node, //clients/node, the protos and
// install_node_sdk.sh). The interpreters are Debian's: /usr/bin/python3 (with its
// python3-grpcio and python3-protobuf), /usr/bin/node and /usr/bin/npm.

// The absolute path of a file in the test's runfiles, given its workspace path
// ("examples/node/client.js"). Aborts, naming the path, if the file is not there: a
// missing `data` entry is a build mistake.
std::string RunfilePath(std::string_view workspace_relative);

// Starts `/usr/bin/python3 examples/python/<script> <args>` with the SDK on PYTHONPATH
// (installed with pip into $TEST_TMPDIR once per test process; an install failure is
// returned, with pip's output, by every call).
absl::StatusOr<std::unique_ptr<ChildProgram>> StartPython(std::string_view script, std::vector<std::string> args);

// What examples/python/client.py and examples/node/client.js print when all goes
// well, run with --count=`count`.
std::vector<std::string> ExpectedClientLines(int count);

// Installs @cohort/client into `dir` (install_node_sdk.sh: npm ci from the lockfile,
// which needs the npm registry) and returns the directory to put on NODE_PATH. Errors
// carry npm's output.
absl::StatusOr<std::string> InstallNodeSdk(const std::string& dir, absl::Duration timeout);

// Starts `/usr/bin/node examples/node/<script> <args>` with NODE_PATH=`node_path` (see
// InstallNodeSdk).
absl::StatusOr<std::unique_ptr<ChildProgram>> StartNode(const std::string& node_path, std::string_view script,
                                                        std::vector<std::string> args);

}  // namespace cohort::testing
