#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cohort::testing {

struct ProcessResult;

// How RunProcess runs a command.
struct RunOptions {
  // Written to the child's stdin, which is then closed.
  std::string stdin_data;
  // Extra environment entries, "NAME=VALUE", on top of the test's environment (a later
  // entry for the same name wins).
  std::vector<std::string> env;
  // Make the child's stdout a pseudo-terminal (isatty(1) is true), as when a person
  // runs it; stderr stays a pipe. The terminal turns "\n" into "\r\n".
  bool stdout_is_terminal = false;
  // Make the child's stdin a pseudo-terminal (isatty(0) is true) fed with stdin_data,
  // as a person typing it; it stays open until the child exits (no EOF).
  bool stdin_is_terminal = false;
  // The child is SIGKILLed after this long and the run fails with DEADLINE_EXCEEDED.
  absl::Duration timeout = absl::Seconds(30);
  // Called on RunProcess's thread each time the child wrote to stdout or stderr, with
  // its pid and what it wrote so far (stdout_text, stderr_text): to act when a line
  // appears, e.g. send a signal or tell another thread. Never called after the child was
  // reaped, so the pid is still the child's.
  std::function<void(pid_t pid, const ProcessResult& so_far)> on_output;
};

// What a finished command did.
struct ProcessResult {
  // The exit code; -1 if a signal killed it (see `signal`).
  int exit_code = -1;
  int signal = 0;
  std::string stdout_text;
  std::string stderr_text;
  // From spawn to exit.
  absl::Duration elapsed;
};

// Runs `binary` with `args` (argv[1...]) to completion and captures its stdout, stderr
// and exit status, with no other process involved (no shell). Both outputs are read as
// they come, so the child never blocks on a full pipe. Errors: the spawn's errno as a
// status (NOT_FOUND for a missing binary); DEADLINE_EXCEEDED, with what was captured,
// when the child outlives `options.timeout` (it is then SIGKILLed and reaped).
absl::StatusOr<ProcessResult> RunProcess(const std::string& binary, const std::vector<std::string>& args,
                                         const RunOptions& options = {});

}  // namespace cohort::testing
