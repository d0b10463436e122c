#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cohort::testing {

// A real service binary running as a child of the test, in a process group of its own.
//
// Start() returns only once the child has printed its ready line
// (`listening grpc=HOST:PORT metrics=HOST:PORT`, see design.md "Binaries, targets and
// flags"), so its addresses are bound and it is serving. Its stdout is a pipe that a
// background thread drains for the whole life of the child (the child never blocks on
// a full pipe) and keeps, line by line, for output(); stderr is the test's own, so the
// service's logs land in the test log.
//
// Guarantees no leaked processes: the destructor SIGKILLs the process group if the
// child is still running and reaps the child; whenever the child is reaped, whatever
// is left of its process group is SIGKILLed too.
//
// Exit statuses (Terminate, Wait) are an absl::StatusOr<int>: a normal exit gives its
// code, death by a signal is ABORTED with the signal's name in the message
// (for instance "... killed by signal 9 (SIGKILL)").
//
// Not thread-safe, except output(), which may be called from any thread.
class ServiceProcess {
 public:
  // Spawns `binary` with `args` (argv[1...]) and the test's environment, and waits up
  // to `ready_timeout` for the ready line. Lines printed before it are kept in
  // output() and otherwise ignored. Errors, each naming the binary and the output so
  // far: UNAVAILABLE if the child exits (or closes stdout and exits) before the ready
  // line, with its exit status; DEADLINE_EXCEEDED if the line does not come in time;
  // INTERNAL if a line starting with "listening" is malformed; the spawn's errno as a
  // status (NOT_FOUND for a missing binary). On error the child has been killed and
  // reaped.
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(
      std::string binary, std::vector<std::string> args,
      absl::Duration ready_timeout = absl::Seconds(30));

  ~ServiceProcess();
  ServiceProcess(const ServiceProcess&) = delete;
  ServiceProcess& operator=(const ServiceProcess&) = delete;

  pid_t pid() const { return pid_; }
  // From the ready line, as printed: "127.0.0.1:PORT", never port 0.
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }

  // Every complete line the child has written to stdout so far, without the newline,
  // the ready line included. Once the child is reaped (Terminate, Wait, Kill9) it holds
  // everything the process wrote, a final unterminated line included.
  std::vector<std::string> output() const;

  // SIGKILLs the process group (a crash, as far as the service can tell) and reaps the
  // child. OK if the child died of that SIGKILL; if it had already exited or died of
  // something else, FAILED_PRECONDITION describing how. After the child was reaped,
  // reports the same as before.
  absl::Status Kill9();

  // SIGTERMs the child and waits up to `grace` for it to exit; then SIGKILLs the
  // process group and reaps it (the status then says the grace ran out). Returns the
  // exit status (see the class comment). If the child was already reaped, returns its
  // status again without signalling.
  absl::StatusOr<int> Terminate(absl::Duration grace = absl::Seconds(10));

  // Waits up to `timeout` for the child to exit on its own and returns its exit status
  // (see the class comment), or DEADLINE_EXCEEDED with the child still running.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::InfiniteDuration());

 private:
  ServiceProcess(std::string binary, pid_t pid, int pidfd, int stdout_fd, int stop_fd);

  // Blocks until the ready line, the child's exit or `ready_timeout`.
  absl::Status AwaitReady(absl::Duration ready_timeout);
  // Appends `bytes` to the line buffer and moves complete lines to lines_.
  void AddOutput(const char* bytes, size_t size);
  // Body of reader_: drains stdout until EOF or stop_fd_, then drains what is buffered.
  void DrainStdout();

  // True once the child has exited (not yet reaped) or was reaped, waiting on the
  // pidfd for at most `timeout`.
  bool AwaitExit(absl::Duration timeout);
  // Requires the child to have exited (no-op once reaped): SIGKILLs what is left of its process
  // group, reaps it and stops the reader (so output() is complete).
  void Reap();
  // SIGKILLs the process group, then Reap().
  void KillAndReap();
  // The exit status as StatusOr, `context` prefixed to a signal's message.
  absl::StatusOr<int> ExitResult(const std::string& context) const;
  std::string Describe() const;  // "<binary> (pid N)"
  std::string OutputForError() const;

  const std::string binary_;
  const pid_t pid_;
  int pidfd_;
  int stdout_fd_;
  int stop_fd_;  // eventfd: nonzero tells reader_ to finish
  bool reaped_ = false;
  int wait_status_ = 0;  // from waitpid, once reaped_
  int reap_errno_ = 0;   // nonzero if waitpid failed (someone else reaped the child)
  std::string grpc_address_;
  std::string metrics_address_;
  std::thread reader_;

  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::string partial_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cohort::testing
