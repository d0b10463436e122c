#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace cohort::testing {

// A program the test runs (python3, node, npm) as a child in a process group of its own,
// with stdin from /dev/null and stdout and stderr captured. stdout is read as lines;
// stderr is kept and also copied to the test's stderr, so it lands in the test log.
//
// The pipes are read only inside AwaitLine() and Wait(): a child that writes more than a
// pipe holds (64 KiB) in between blocks until the test reads, which suits programs that
// print a few lines. The destructor SIGKILLs the process group if the child still runs
// and reaps it, so no process outlives the test object. Not thread-safe.
class ChildProgram {
 public:
  // Spawns argv[0] (an absolute path) with argv, the test's environment with `env`
  // added (replacing variables of the same name), in `cwd` (empty: the test's). Errors:
  // INVALID_ARGUMENT for an empty argv, the spawn's errno otherwise (NOT_FOUND for a
  // missing program).
  static absl::StatusOr<std::unique_ptr<ChildProgram>> Start(std::vector<std::string> argv,
                                                             const std::map<std::string, std::string>& env = {},
                                                             const std::string& cwd = "");
  ~ChildProgram();
  ChildProgram(const ChildProgram&) = delete;
  ChildProgram& operator=(const ChildProgram&) = delete;

  // Reads stdout until a line starting with `prefix` (lines before it are kept in
  // lines()) and returns that line. DEADLINE_EXCEEDED after `timeout`; NOT_FOUND when
  // stdout ends without one. Each error's message quotes the output so far.
  absl::StatusOr<std::string> AwaitLine(absl::string_view prefix, absl::Duration timeout);

  // Sends `signo` to the child (not its group: the program decides what to tell its own
  // children).
  void Signal(int signo);

  // Waits up to `timeout` for the child to exit, reading its output meanwhile; once it
  // has, kills what is left of its process group and reads the pipes to their end.
  // Returns the exit code; ABORTED when a signal killed it; DEADLINE_EXCEEDED (with the
  // child killed) when the timeout passed first. After the first call, returns the same.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // Every stdout line read so far, without newlines (a final unterminated line counts).
  const std::vector<std::string>& lines() const { return lines_; }
  // stdout read so far as text, each line followed by "\n".
  std::string out() const;
  // stderr read so far.
  const std::string& err() const { return err_; }

 private:
  using Clock = std::chrono::steady_clock;
  ChildProgram(std::string name, pid_t pid, int pidfd, int out_fd, int err_fd);

  // Reads whatever is ready on the open pipes, waiting until `deadline` for anything to
  // happen (output, end of a pipe, or the child's exit when `watch_exit`). False if the
  // deadline passed with nothing to do.
  bool Pump(Clock::time_point deadline, bool watch_exit);
  void KillAndReap();
  std::string Describe() const;  // "name (pid N)"

  const std::string name_;
  const pid_t pid_;
  int pidfd_;
  int out_fd_;
  int err_fd_;
  bool exited_ = false;  // pidfd_ reported the exit
  bool reaped_ = false;
  absl::StatusOr<int> exit_ = absl::UnknownError("not reaped");
  std::vector<std::string> lines_;
  std::string partial_;  // stdout after the last newline
  size_t examined_ = 0;  // lines_ already offered to AwaitLine
  std::string err_;
};

}  // namespace cohort::testing
