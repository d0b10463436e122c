#include "tests/cli/run_process.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace cohort::testing {
namespace {

absl::Status Errno(int error, absl::string_view what) { return absl::ErrnoToStatus(error, what); }

void CloseOnExec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// The test's environment with `extra` ("NAME=VALUE") replacing or adding entries.
std::vector<std::string> Environment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  for (const std::string& entry : extra) {
    const std::string prefix = entry.substr(0, entry.find('=') + 1);
    env.erase(std::remove_if(env.begin(), env.end(), [&](const std::string& e) { return e.rfind(prefix, 0) == 0; }),
              env.end());
    env.push_back(entry);
  }
  return env;
}

// One output of the child being drained into a string.
struct Stream {
  int fd = -1;
  std::string* out = nullptr;
  bool open() const { return fd >= 0; }
  // Reads what is there; closes at EOF (or EIO: a terminal whose other side closed).
  void Drain() {
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      out->append(buf, static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close(fd);
      fd = -1;
    }
  }
};

}  // namespace

absl::StatusOr<ProcessResult> RunProcess(const std::string& binary, const std::vector<std::string>& args,
                                         const RunOptions& options) {
  int in[2], out[2], err[2];
  if (options.stdin_is_terminal) {
    // in[0] is the child's side (the terminal), in[1] the test's (what the person types).
    if (openpty(&in[1], &in[0], nullptr, nullptr, nullptr) != 0) return Errno(errno, "openpty");
    CloseOnExec(in[0]);
    CloseOnExec(in[1]);
  } else if (pipe2(in, O_CLOEXEC) != 0) {
    return Errno(errno, "pipe2");
  }
  if (pipe2(err, O_CLOEXEC) != 0) return Errno(errno, "pipe2");
  if (options.stdout_is_terminal) {
    if (openpty(&out[0], &out[1], nullptr, nullptr, nullptr) != 0) return Errno(errno, "openpty");
    CloseOnExec(out[0]);
    CloseOnExec(out[1]);
  } else if (pipe2(out, O_CLOEXEC) != 0) {
    return Errno(errno, "pipe2");
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t signals;
  sigemptyset(&signals);
  posix_spawnattr_setsigmask(&attr, &signals);
  sigfillset(&signals);
  posix_spawnattr_setsigdefault(&attr, &signals);
  std::vector<std::string> argv_strings = {binary};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings = Environment(options.env);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  const absl::Time start = absl::Now();
  pid_t pid = -1;
  const int spawn_error = posix_spawn(&pid, binary.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (spawn_error != 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return Errno(spawn_error, absl::StrCat("cannot spawn ", binary));
  }

  ProcessResult result;
  Stream streams[2] = {{out[0], &result.stdout_text}, {err[0], &result.stderr_text}};
  int stdin_fd = in[1];
  const int terminal_fd = options.stdin_is_terminal ? in[1] : -1;  // closed only at the end
  fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
  std::size_t written = 0;
  absl::Cleanup close_all = [&] {
    if (stdin_fd >= 0) {
      close(stdin_fd);
    } else if (terminal_fd >= 0) {
      close(terminal_fd);
    }
    for (Stream& s : streams) {
      if (s.open()) close(s.fd);
    }
  };
  // A child that does not read its stdin must not die of SIGPIPE in the test.
  signal(SIGPIPE, SIG_IGN);

  const absl::Time deadline = start + options.timeout;
  bool timed_out = false;
  while (streams[0].open() || streams[1].open()) {
    pollfd fds[3];
    nfds_t n = 0;
    for (Stream& s : streams) fds[n++] = {s.fd, POLLIN, 0};
    if (stdin_fd >= 0) {
      if (written == options.stdin_data.size()) {
        // A terminal stays open (closing its master would discard unread input); a
        // pipe is closed, so the child sees the end of its input.
        if (!options.stdin_is_terminal) close(stdin_fd);
        stdin_fd = -1;
      } else {
        fds[n++] = {stdin_fd, POLLOUT, 0};
      }
    }
    const int64_t left_ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left_ms <= 0) {
      timed_out = true;
      break;
    }
    const int ready = poll(fds, n, static_cast<int>(std::min<int64_t>(left_ms, INT_MAX)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return Errno(errno, "poll");
    const std::size_t captured = result.stdout_text.size() + result.stderr_text.size();
    for (nfds_t i = 0; i < 2; ++i) {
      // A closed stream sits in the set as fd -1, which poll ignores.
      if (fds[i].fd >= 0 && fds[i].revents != 0) streams[i].Drain();
    }
    if (options.on_output && result.stdout_text.size() + result.stderr_text.size() != captured) {
      options.on_output(pid, result);
    }
    if (n == 3 && fds[2].revents != 0) {
      const ssize_t w = write(stdin_fd, options.stdin_data.data() + written, options.stdin_data.size() - written);
      if (w > 0) {
        written += static_cast<std::size_t>(w);
      } else if (errno != EAGAIN && errno != EINTR) {
        written = options.stdin_data.size();  // the child closed its stdin: stop feeding it
      }
    }
  }
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.elapsed = absl::Now() - start;
  if (timed_out) {
    return absl::DeadlineExceededError(absl::StrCat(binary, " ran past ", absl::FormatDuration(options.timeout),
                                                    "; stdout: ", result.stdout_text,
                                                    "; stderr: ", result.stderr_text));
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace cohort::testing
