#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tests/testing/service_process.h"

namespace cohort::bench {

// Starts a Cohort binary for a benchmark and waits for its ready line; exits the
// benchmark with a message if it does not start. A relative `binary` is taken from the
// workspace root under `bazel run` (BUILD_WORKSPACE_DIRECTORY), else from the current
// directory, so both `bazel run` and `bazel-bin/bench/...` find bazel-bin/services/....
inline std::unique_ptr<testing::ServiceProcess> StartServiceOrDie(std::string binary, std::vector<std::string> args) {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (ws != nullptr && !binary.empty() && binary[0] != '/') binary = std::string(ws) + "/" + binary;
  auto p = testing::ServiceProcess::Start(binary, std::move(args));
  if (!p.ok()) {
    std::fprintf(stderr, "cannot start %s: %s\n", binary.c_str(), p.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*p);
}

}  // namespace cohort::bench
