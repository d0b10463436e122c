#include "tests/testing/service_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cohort::testing {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point DeadlineAfter(absl::Duration timeout) {
  if (timeout > absl::Hours(24 * 365)) return Clock::time_point::max();
  return Clock::now() + absl::ToChronoNanoseconds(std::max(timeout, absl::ZeroDuration()));
}

// poll()'s timeout until `deadline`, rounded up so a wait never ends early; -1 for none.
int PollTimeoutMs(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

// glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ cannot link its pidfd_open.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

absl::Status Errno(int error, absl::string_view what) { return absl::ErrnoToStatus(error, what); }

// "HOST:PORT" with a non-empty host and a port in [1, 65535].
bool IsBoundAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  return absl::SimpleAtoi(address.substr(colon + 1), &port) && port > 0 && port <= 65535;
}

// Parses `listening grpc=HOST:PORT metrics=HOST:PORT` into its two addresses.
absl::Status ParseReadyLine(absl::string_view line, std::string* grpc, std::string* metrics) {
  const std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
  if (words.size() != 3 || words[0] != "listening" || !absl::StartsWith(words[1], "grpc=") ||
      !absl::StartsWith(words[2], "metrics=")) {
    return absl::InternalError(absl::StrCat("malformed ready line \"", line, "\""));
  }
  const absl::string_view g = words[1].substr(5);
  const absl::string_view m = words[2].substr(8);
  if (!IsBoundAddress(g) || !IsBoundAddress(m)) {
    return absl::InternalError(absl::StrCat("ready line \"", line, "\" has no bound HOST:PORT"));
  }
  *grpc = std::string(g);
  *metrics = std::string(m);
  return absl::OkStatus();
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return name == nullptr ? absl::StrCat("killed by signal ", sig)
                           : absl::StrCat("killed by signal ", sig, " (SIG", name, ")");
  }
  return absl::StrCat("wait status ", status);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServiceProcess>> ServiceProcess::Start(
    std::string binary, std::vector<std::string> args, absl::Duration ready_timeout) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno(errno, "pipe2");
  const int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    const int error = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Errno(error, "eventfd");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A process group of its own (so the whole service can be killed), and a clean signal
  // state: a test (or gtest) may block or ignore signals the service relies on.
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attr, &signals);
  sigfillset(&signals);
  posix_spawnattr_setsigdefault(&attr, &signals);

  std::vector<char*> argv;
  argv.push_back(binary.data());
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[1]);
  if (spawn_error != 0) {
    close(pipe_fds[0]);
    close(stop_fd);
    return Errno(spawn_error, absl::StrCat("cannot spawn ", binary));
  }
  const int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    const int error = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(pipe_fds[0]);
    close(stop_fd);
    return Errno(error, "pidfd_open");
  }

  std::unique_ptr<ServiceProcess> process(
      new ServiceProcess(std::move(binary), pid, pidfd, pipe_fds[0], stop_fd));
  const absl::Status ready = process->AwaitReady(ready_timeout);
  if (!ready.ok()) {
    const bool stopped_by_us = !process->reaped_;
    if (stopped_by_us) process->KillAndReap();
    const std::string how = process->reap_errno_ != 0 ? absl::StrCat("could not be reaped: ",
                                                                     strerror(process->reap_errno_))
                                                      : DescribeWaitStatus(process->wait_status_);
    return absl::Status(ready.code(),
                        absl::StrCat(process->Describe(), ": ", ready.message(), " (",
                                     stopped_by_us ? "then stopped by the test: " : "", how, ")",
                                     process->OutputForError()));
  }
  process->reader_ = std::thread([p = process.get()] { p->DrainStdout(); });
  return process;
}

ServiceProcess::ServiceProcess(std::string binary, pid_t pid, int pidfd, int stdout_fd, int stop_fd)
    : binary_(std::move(binary)),
      pid_(pid),
      pidfd_(pidfd),
      stdout_fd_(stdout_fd),
      stop_fd_(stop_fd) {}

ServiceProcess::~ServiceProcess() {
  if (!reaped_) KillAndReap();
  close(stdout_fd_);
  close(stop_fd_);
}

std::vector<std::string> ServiceProcess::output() const {
  absl::MutexLock lock(&mu_);
  return lines_;
}

absl::Status ServiceProcess::AwaitReady(absl::Duration ready_timeout) {
  const Clock::time_point deadline = DeadlineAfter(ready_timeout);
  size_t examined = 0;  // lines_ already checked for the ready line
  bool eof = false;
  while (!eof) {
    {
      absl::MutexLock lock(&mu_);
      for (; examined < lines_.size(); ++examined) {
        if (absl::StartsWith(lines_[examined], "listening")) {
          return ParseReadyLine(lines_[examined], &grpc_address_, &metrics_address_);
        }
      }
    }
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {pidfd_, POLLIN, 0}};
    const int ready = poll(fds, 2, PollTimeoutMs(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno(errno, "poll");
    if (ready == 0) {
      return absl::DeadlineExceededError(
          absl::StrCat("no ready line within ", absl::FormatDuration(ready_timeout)));
    }
    if (fds[0].revents != 0) {  // read before looking at the exit: the line may be there
      char buf[4096];
      const ssize_t n = read(stdout_fd_, buf, sizeof buf);
      if (n > 0) AddOutput(buf, static_cast<size_t>(n));
      if (n == 0) eof = true;
      if (n < 0 && errno != EINTR) return Errno(errno, "read");
    } else if (fds[1].revents != 0) {
      break;  // exited; its stdout is held open by some process it left behind
    }
  }
  if (!AwaitExit(absl::FromChrono(std::max(deadline - Clock::now(), Clock::duration::zero())))) {
    return absl::DeadlineExceededError("closed stdout without a ready line and did not exit");
  }
  Reap();
  return absl::UnavailableError("exited before printing the ready line");
}

void ServiceProcess::AddOutput(const char* bytes, size_t size) {
  absl::MutexLock lock(&mu_);
  partial_.append(bytes, size);
  size_t start = 0;
  for (size_t newline; (newline = partial_.find('\n', start)) != std::string::npos;
       start = newline + 1) {
    lines_.emplace_back(partial_, start, newline - start);
  }
  partial_.erase(0, start);
}

void ServiceProcess::DrainStdout() {
  char buf[65536];
  bool stop = false;
  for (;;) {
    pollfd fds[2] = {{stdout_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    // Once told to stop, take only what is already in the pipe.
    const int ready = poll(fds, stop ? 1 : 2, stop ? 0 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    if (fds[0].revents != 0) {
      const ssize_t n = read(stdout_fd_, buf, sizeof buf);
      if (n > 0) AddOutput(buf, static_cast<size_t>(n));
      if (n == 0 || (n < 0 && errno != EINTR)) break;
    } else {
      stop = true;
    }
  }
  absl::MutexLock lock(&mu_);
  if (!partial_.empty()) lines_.push_back(std::exchange(partial_, std::string()));
}

bool ServiceProcess::AwaitExit(absl::Duration timeout) {
  if (reaped_) return true;
  const Clock::time_point deadline = DeadlineAfter(timeout);
  for (;;) {
    siginfo_t info{};
    const int r = waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT);
    if (r == 0 && info.si_pid == pid_) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more: Reap() reports it
    const int wait_ms = PollTimeoutMs(deadline);
    if (wait_ms == 0) return false;
    pollfd fd = {pidfd_, POLLIN, 0};
    poll(&fd, 1, wait_ms);  // readable once the child has exited; EINTR just loops
  }
}

void ServiceProcess::Reap() {
  if (reaped_) return;
  // The exited leader is a zombie until waitpid, so its pid still names the group.
  kill(-pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    wait_status_ = status;
  } else {
    reap_errno_ = errno;
  }
  reaped_ = true;
  close(pidfd_);
  pidfd_ = -1;
  if (reader_.joinable()) {
    eventfd_write(stop_fd_, 1);
    reader_.join();
  } else {
    eventfd_write(stop_fd_, 1);
    DrainStdout();
  }
}

void ServiceProcess::KillAndReap() {
  kill(-pid_, SIGKILL);
  Reap();
}

absl::Status ServiceProcess::Kill9() {
  if (!reaped_) KillAndReap();
  if (reap_errno_ == 0 && WIFSIGNALED(wait_status_) && WTERMSIG(wait_status_) == SIGKILL) {
    return absl::OkStatus();
  }
  const absl::StatusOr<int> result = ExitResult("");
  return absl::FailedPreconditionError(absl::StrCat(
      Describe(), " was not killed by SIGKILL: ",
      result.ok() ? absl::StrCat("exit code ", *result) : std::string(result.status().message())));
}

absl::StatusOr<int> ServiceProcess::Terminate(absl::Duration grace) {
  if (reaped_) return ExitResult("");
  kill(pid_, SIGTERM);
  if (AwaitExit(grace)) {
    Reap();
    return ExitResult("");
  }
  KillAndReap();
  return ExitResult(
      absl::StrCat("did not exit within ", absl::FormatDuration(grace), " of SIGTERM, so "));
}

absl::StatusOr<int> ServiceProcess::Wait(absl::Duration timeout) {
  if (!AwaitExit(timeout)) {
    return absl::DeadlineExceededError(
        absl::StrCat(Describe(), " still running after ", absl::FormatDuration(timeout)));
  }
  Reap();
  return ExitResult("");
}

absl::StatusOr<int> ServiceProcess::ExitResult(const std::string& context) const {
  if (reap_errno_ != 0) {
    return absl::InternalError(
        absl::StrCat(Describe(), " could not be reaped: ", strerror(reap_errno_)));
  }
  if (WIFEXITED(wait_status_)) return WEXITSTATUS(wait_status_);
  return absl::AbortedError(
      absl::StrCat(context, Describe(), " ", DescribeWaitStatus(wait_status_)));
}

std::string ServiceProcess::Describe() const {
  const size_t slash = binary_.rfind('/');
  return absl::StrCat(slash == std::string::npos ? binary_ : binary_.substr(slash + 1), " (pid ",
                      pid_, ")");
}

std::string ServiceProcess::OutputForError() const {
  constexpr size_t kMaxLines = 20;
  absl::MutexLock lock(&mu_);
  if (lines_.empty()) return "; no stdout";
  const size_t first = lines_.size() > kMaxLines ? lines_.size() - kMaxLines : 0;
  return absl::StrCat("; stdout", first > 0 ? " (last lines)" : "", ":\n",
                      absl::StrJoin(lines_.begin() + first, lines_.end(), "\n"));
}

}  // namespace cohort::testing
