#include "tests/examples/child_program.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace cohort::testing {
namespace {

// glibc 2.36's <sys/pidfd.h> lacks extern "C", so C++ cannot link its pidfd_open.
int PidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

int PollTimeoutMs(std::chrono::steady_clock::time_point deadline) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return 0;
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

void CloseFd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// The test's environment with `extra` added or replacing, as "NAME=value" strings.
std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (!extra.contains(name)) env.push_back(entry);
  }
  for (const auto& [name, value] : extra) env.push_back(absl::StrCat(name, "=", value));
  return env;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChildProgram>> ChildProgram::Start(std::vector<std::string> argv,
                                                                  const std::map<std::string, std::string>& env,
                                                                  const std::string& cwd) {
  if (argv.empty()) return absl::InvalidArgumentError("ChildProgram::Start: empty argv");
  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2");
  if (pipe2(err, O_CLOEXEC) != 0) {
    const int error = errno;
    close(out[0]);
    close(out[1]);
    return absl::ErrnoToStatus(error, "pipe2");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // A process group of its own (so everything it starts can be killed) and a clean
  // signal state: gtest or the test may block or ignore signals the program relies on.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attr, &signals);
  sigfillset(&signals);
  posix_spawnattr_setsigdefault(&attr, &signals);

  std::vector<char*> args;
  for (std::string& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::vector<std::string> environment = Environment(env);
  std::vector<char*> envp;
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(out[1]);
  close(err[1]);
  if (spawn_error != 0) {
    close(out[0]);
    close(err[0]);
    return absl::ErrnoToStatus(spawn_error, absl::StrCat("cannot spawn ", argv[0]));
  }
  const int pidfd = PidfdOpen(pid);
  if (pidfd < 0) {
    const int error = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    close(out[0]);
    close(err[0]);
    return absl::ErrnoToStatus(error, "pidfd_open");
  }
  // Name it by what it runs: "python3 worker.py", not just the interpreter.
  std::vector<std::string> shown;
  for (size_t i = 0; i < argv.size() && i < 2; ++i) shown.push_back(argv[i].substr(argv[i].rfind('/') + 1));
  return std::unique_ptr<ChildProgram>(new ChildProgram(absl::StrJoin(shown, " "), pid, pidfd, out[0], err[0]));
}

ChildProgram::ChildProgram(std::string name, pid_t pid, int pidfd, int out_fd, int err_fd)
    : name_(std::move(name)), pid_(pid), pidfd_(pidfd), out_fd_(out_fd), err_fd_(err_fd) {}

ChildProgram::~ChildProgram() {
  if (!reaped_) KillAndReap();
}

std::string ChildProgram::out() const {
  std::string text;
  for (const std::string& line : lines_) absl::StrAppend(&text, line, "\n");
  return text;
}

bool ChildProgram::Pump(Clock::time_point deadline, bool watch_exit) {
  pollfd fds[3];
  int n = 0;
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (watch_exit && !exited_) fds[n++] = {pidfd_, POLLIN, 0};
  if (n == 0) return false;
  int ready;
  do {
    ready = poll(fds, n, PollTimeoutMs(deadline));
  } while (ready < 0 && errno == EINTR);
  if (ready <= 0) return false;
  for (int i = 0; i < n; ++i) {
    if (fds[i].revents == 0) continue;
    if (fds[i].fd == pidfd_) {
      exited_ = true;
      continue;
    }
    char buf[65536];
    const ssize_t got = read(fds[i].fd, buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (fds[i].fd == out_fd_) {
      if (got > 0) {
        partial_.append(buf, static_cast<size_t>(got));
        size_t start = 0;
        for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
          lines_.emplace_back(partial_, start, nl - start);
        }
        partial_.erase(0, start);
      } else {
        if (!partial_.empty()) lines_.push_back(std::exchange(partial_, std::string()));
        CloseFd(out_fd_);
      }
    } else if (got > 0) {
      err_.append(buf, static_cast<size_t>(got));
      std::fwrite(buf, 1, static_cast<size_t>(got), stderr);  // the test log gets it as it comes
    } else {
      CloseFd(err_fd_);
    }
  }
  return true;
}

absl::StatusOr<std::string> ChildProgram::AwaitLine(absl::string_view prefix, absl::Duration timeout) {
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  for (;;) {
    for (; examined_ < lines_.size(); ++examined_) {
      if (absl::StartsWith(lines_[examined_], prefix)) return lines_[examined_++];
    }
    if (out_fd_ < 0) {
      return absl::NotFoundError(absl::StrCat(Describe(), " ended its output without a line starting \"", prefix,
                                              "\"; stdout:\n", out(), "stderr:\n", err_));
    }
    if (!Pump(deadline, /*watch_exit=*/false)) {
      return absl::DeadlineExceededError(absl::StrCat(Describe(), " printed no line starting \"", prefix,
                                                      "\" within ", absl::FormatDuration(timeout),
                                                      "; stdout:\n", out(), "stderr:\n", err_));
    }
  }
}

void ChildProgram::Signal(int signo) {
  if (!reaped_) kill(pid_, signo);
}

absl::StatusOr<int> ChildProgram::Wait(absl::Duration timeout) {
  if (reaped_) return exit_;
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  while (!exited_) {
    if (!Pump(deadline, /*watch_exit=*/true)) {
      KillAndReap();
      exit_ = absl::DeadlineExceededError(absl::StrCat(Describe(), " still running after ",
                                                       absl::FormatDuration(timeout), ", killed; stdout:\n", out(),
                                                       "stderr:\n", err_));
      return exit_;
    }
  }
  // The exited leader is a zombie until reaped, so its pid still names the group: kill
  // whatever it left behind, then the pipes end once their last writer is gone.
  kill(-pid_, SIGKILL);
  const Clock::time_point drain_deadline = Clock::now() + std::chrono::seconds(10);
  while ((out_fd_ >= 0 || err_fd_ >= 0) && Pump(drain_deadline, /*watch_exit=*/false)) {
  }
  KillAndReap();
  return exit_;
}

void ChildProgram::KillAndReap() {
  kill(-pid_, SIGKILL);
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  reaped_ = true;
  CloseFd(pidfd_);
  CloseFd(out_fd_);
  CloseFd(err_fd_);
  if (r != pid_) {
    exit_ = absl::ErrnoToStatus(errno, absl::StrCat(Describe(), " could not be reaped"));
  } else if (WIFEXITED(status)) {
    exit_ = WEXITSTATUS(status);
  } else {
    exit_ = absl::AbortedError(absl::StrCat(Describe(), " killed by signal ", WTERMSIG(status)));
  }
}

std::string ChildProgram::Describe() const { return absl::StrCat(name_, " (pid ", pid_, ")"); }

}  // namespace cohort::testing
