#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "services/executor/progress_lines.h"

namespace cohort::executor {

// What to run. Nothing is inherited from the executor implicitly: the environment is
// exactly `env` unless `inherit_env` is set, and the child's signal mask and
// dispositions are reset to the defaults (the executor blocks SIGTERM in all threads).
struct ProcessSpec {
  // The program and its arguments; argv[0] is the absolute path that is executed
  // (no PATH search). No string may contain a NUL byte.
  std::vector<std::string> argv{};
  // The child's environment. Keys are non-empty and contain no '='.
  std::map<std::string, std::string> env{};
  // Start from the executor's own environment, with `env` overriding it.
  bool inherit_env = false;
  // Working directory; empty keeps the executor's.
  std::string cwd{};
  // Written to the child's stdin, which is then closed (EOF). A child that exits or
  // closes stdin without reading it all is not an error.
  std::string stdin_data{};
  // Measured from the moment the child exists; none: no limit.
  std::optional<runtime::Duration> timeout{};
  // Time between SIGTERM and SIGKILL on timeout or cancellation.
  runtime::Duration kill_grace = std::chrono::seconds(5);
  // Output kept per stream; the rest is read and discarded, so the child never blocks
  // on a full pipe.
  std::size_t max_stdout_bytes = 1 << 20;
  std::size_t max_stderr_bytes = 64 << 10;
  // Set: the child gets a progress pipe as fd kProgressFd, named by kProgressFdEnv in
  // its environment (overriding `env` and the inherited one), and this is called on
  // the loop with its well-formed lines (see progress_lines.h). When several lines
  // arrive in one read only the last is passed on. Empty: no progress fd.
  absl::AnyInvocable<void(ProgressLine)> on_progress{};
  // Called on the loop once the child exists, with ProcessResult::spawn_latency.
  absl::AnyInvocable<void(runtime::Duration)> on_started{};
};

// How a child ended. Exactly one of exit_code and term_signal is set.
struct ProcessResult {
  std::optional<int> exit_code;    // it exited (WEXITSTATUS)
  std::optional<int> term_signal;  // a signal killed it (WTERMSIG)
  // The timeout passed and the runner stopped the child (SIGTERM, then SIGKILL).
  bool timed_out = false;
  // The awaiting task was cancelled before RunProcess returned; a child still running
  // then was stopped as on timeout (both flags are set when the cancellation arrives
  // during a timeout's grace period). A child that had already exited keeps its
  // exit_code, so the caller may still use the result.
  bool cancelled = false;
  // The first max_*_bytes of each stream; *_truncated says more was written.
  std::string stdout_data;
  bool stdout_truncated = false;
  std::string stderr_data;
  bool stderr_truncated = false;
  // Everything the child wrote to each stream, kept or not.
  std::uint64_t stdout_bytes = 0;
  std::uint64_t stderr_bytes = 0;
  // Lines written to the progress fd: well-formed ones (passed on or superseded by a
  // later line of the same read) and malformed ones (ignored).
  std::int64_t progress_lines = 0;
  std::int64_t malformed_progress_lines = 0;
  // From RunProcess() being called to the child existing (includes waiting for a
  // thread of the pool).
  runtime::Duration spawn_latency{};
  // From the child existing to its exit being observed.
  runtime::Duration run_duration{};
  // Members of the child's process group were still present (e.g. stuck in
  // uninterruptible sleep) kGroupExitWait after they were sent SIGKILL.
  bool stray_processes = false;

  // Exited with code 0, neither timed out nor cancelled.
  bool Succeeded() const { return exit_code == 0 && !timed_out && !cancelled; }
  // "exited with code 3", "killed by signal 9 (Killed)", "timed out (killed by signal
  // 15 (Terminated))", ... for error messages.
  std::string Describe() const;
};

// How long RunProcess waits for the child's process group to disappear after the
// final SIGKILL before it gives up and sets ProcessResult::stray_processes.
inline constexpr runtime::Duration kGroupExitWait = std::chrono::seconds(10);

// Makes this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER),
// so RunProcess reaps a job's orphaned grandchildren itself once they are killed rather
// than waiting for init to do it (some inits reap lazily; a container's PID 1 may be
// the executor, which is then the reaper anyway). Call once, from main. Orphans that
// left their job's process group are then this process's zombies until it exits.
absl::Status BecomeChildSubreaper();

// Runs one child process to completion on `loop` (call from a task on its thread).
//
// - The child is started off the loop (posix_spawn on runtime::ThreadPool::Default()),
//   in a new process group of its own (pgid = pid), with an empty signal mask, every
//   signal at its default disposition and only fds 0, 1 and 2 open (pipes), plus the
//   progress pipe's write end as fd kProgressFd when `on_progress` is set. The
//   executor's copy of that write end is closed once the child exists, and no other
//   child inherits it (every pipe is close-on-exec, and the child closes fds above
//   its own before exec).
// - stdin is written and stdout/stderr (and progress) read non-blocking on the loop;
//   the exit is observed through a pidfd on the loop: no thread per child.
// - When the timeout passes, or the awaiting task is cancelled, the whole group gets
//   SIGTERM, and SIGKILL if the child is still alive after `kill_grace`. Cancellation
//   does not raise: RunProcess stops the child and returns a result with
//   `cancelled` set (further cancellations meanwhile are absorbed the same way).
// - After the child exits, for whatever reason, its process group gets SIGKILL and
//   RunProcess waits (up to kGroupExitWait) until the group is gone, so background
//   grandchildren do not outlive the job. Descendants that leave the group (setsid,
//   setpgid) are out of reach.
// - On return no child is running or unreaped and every fd is closed. If the task's
//   frame is destroyed mid-run (loop teardown), the child's group is SIGKILLed and the
//   child reaped synchronously.
//
// Errors (nothing is left running): INVALID_ARGUMENT for an empty argv, a relative
// program path, a NUL byte or a bad env key; the errno's code (NOT_FOUND,
// PERMISSION_DENIED, ...) when the program cannot be started, e.g. a missing program
// or cwd; INTERNAL when a system call fails.
//
//   ProcessSpec spec{.argv = {"/bin/cat"}, .stdin_data = "hello"};
//   absl::StatusOr<ProcessResult> r = co_await RunProcess(loop, std::move(spec));
runtime::Task<absl::StatusOr<ProcessResult>> RunProcess(runtime::EventLoop& loop, ProcessSpec spec);

}  // namespace cohort::executor
