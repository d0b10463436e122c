#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cohort::testing {

// What a short-lived child process did: its exit code and everything it wrote.
struct Exited {
  int exit_code = 0;
  std::string stdout_text;
  std::string stderr_text;
};

// Runs `binary` with `args` (argv[1...]) and the test's environment, stdin closed,
// and waits up to `timeout` for it to exit, capturing its stdout and stderr: for
// binaries expected to end on their own, e.g. a service refusing to start (a service
// that starts is ServiceProcess's job). Errors: DEADLINE_EXCEEDED if it is still
// running at `timeout` (it is then SIGKILLed and reaped), ABORTED if a signal killed
// it, the spawn's errno as a status. Never leaves a process behind.
absl::StatusOr<Exited> RunToExit(const std::string& binary, const std::vector<std::string>& args,
                                 absl::Duration timeout = absl::Seconds(30));

}  // namespace cohort::testing
