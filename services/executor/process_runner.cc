#include "services/executor/process_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "libs/common/wire_time.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/event.h"
#include "libs/runtime/sleep.h"
#include "libs/runtime/thread_pool.h"

extern char** environ;

namespace cohort::executor {
namespace {

using runtime::Duration;
using runtime::TimePoint;

// Bytes read from one output pipe per wake-up, so one chatty child cannot hold the loop.
constexpr std::size_t kReadBudgetPerWakeup = 256 << 10;
// Bytes read from an output pipe once the group is gone: what is left in the pipe (at
// most its capacity, 1 MiB unless raised by root) plus writes from escaped descendants,
// which must not keep the runner reading forever.
constexpr std::size_t kFinalDrainBytes = 4 << 20;
// Polling interval bounds while waiting for the process group to disappear after
// SIGKILL (there is no event for "group empty"; SIGKILLed processes go within ms).
constexpr Duration kGroupPollFirst = std::chrono::milliseconds(1);
constexpr Duration kGroupPollMax = std::chrono::milliseconds(50);

// Owns a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) Reset(std::exchange(other.fd_, -1));
    return *this;
  }
  ~UniqueFd() { Reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset(int fd = -1) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

absl::Status SystemError(int error, absl::string_view what) {
  return absl::ErrnoToStatus(error, what);
}

bool HasNul(std::string_view s) { return s.find('\0') != std::string_view::npos; }

absl::Status Validate(const ProcessSpec& spec) {
  if (spec.argv.empty()) {
    return absl::InvalidArgumentError("argv is empty: give the program's absolute path first");
  }
  if (spec.argv[0].empty() || spec.argv[0][0] != '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("program \"", spec.argv[0], "\" is not an absolute path: give its full path, e.g. /bin/cat"));
  }
  for (std::size_t i = 0; i < spec.argv.size(); ++i) {
    if (HasNul(spec.argv[i])) return absl::InvalidArgumentError(absl::StrCat("argv[", i, "] contains a NUL byte"));
  }
  for (const auto& [key, value] : spec.env) {
    if (key.empty() || key.find('=') != std::string::npos || HasNul(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("env key \"", key, "\" is invalid: keys are non-empty, without '=' or NUL"));
    }
    if (HasNul(value)) return absl::InvalidArgumentError(absl::StrCat("env value of \"", key, "\" contains a NUL byte"));
  }
  if (HasNul(spec.cwd)) return absl::InvalidArgumentError("cwd contains a NUL byte");
  return absl::OkStatus();
}

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

// Moves fd to a number >= min_fd (close-on-exec), so the child's dup2 onto 0, 1 and 2
// (and kProgressFd) cannot clobber another pipe end when the executor runs with a
// standard fd closed, and a dup2 onto kProgressFd is never a dup2 onto itself (which
// would leave it close-on-exec).
absl::Status MoveToAtLeast(UniqueFd& fd, int min_fd) {
  if (fd.get() >= min_fd) return absl::OkStatus();
  int moved = fcntl(fd.get(), F_DUPFD_CLOEXEC, min_fd);
  if (moved < 0) return SystemError(errno, "fcntl(F_DUPFD_CLOEXEC)");
  fd.Reset(moved);
  return absl::OkStatus();
}

// A close-on-exec pipe with both ends at fd numbers >= min_fd; the parent's end is
// made non-blocking, the child's stays blocking (they are separate open file
// descriptions).
absl::StatusOr<Pipe> MakePipe(bool parent_reads, int min_fd = STDERR_FILENO + 1) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return SystemError(errno, "pipe2");
  Pipe pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
  if (absl::Status s = MoveToAtLeast(pipe.read, min_fd); !s.ok()) return s;
  if (absl::Status s = MoveToAtLeast(pipe.write, min_fd); !s.ok()) return s;
  int parent_end = parent_reads ? pipe.read.get() : pipe.write.get();
  if (fcntl(parent_end, F_SETFL, O_NONBLOCK) != 0) return SystemError(errno, "fcntl(O_NONBLOCK)");
  return pipe;
}

std::vector<std::string> BuildEnvironment(const ProcessSpec& spec) {
  std::vector<std::string> env;
  if (spec.inherit_env) {
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
      std::string_view kv(*entry);
      std::string key(kv.substr(0, kv.find('=')));
      if (!spec.env.contains(key) && !(spec.on_progress && key == kProgressFdEnv)) env.emplace_back(kv);
    }
  }
  for (const auto& [key, value] : spec.env) {
    if (!spec.on_progress || key != kProgressFdEnv) env.push_back(absl::StrCat(key, "=", value));
  }
  if (spec.on_progress) env.push_back(absl::StrCat(kProgressFdEnv, "=", kProgressFd));
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// A started child: its pid (also its process group id), pidfd and the parent's pipe
// ends.
struct SpawnedChild {
  pid_t pid = -1;
  UniqueFd pidfd;
  UniqueFd stdin_fd;
  UniqueFd stdout_fd;
  UniqueFd stderr_fd;
  UniqueFd progress_fd;  // invalid unless the spec asks for progress
  TimePoint spawned_at;
};

// posix_spawn attributes and file actions, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  SpawnSetup() {
    posix_spawnattr_init(&attr);
    posix_spawn_file_actions_init(&actions);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
};

// Blocking: runs on a pool thread.
absl::StatusOr<SpawnedChild> SpawnChild(const ProcessSpec& spec, const runtime::Clock& clock) {
  absl::StatusOr<Pipe> in = MakePipe(/*parent_reads=*/false);
  if (!in.ok()) return in.status();
  absl::StatusOr<Pipe> out = MakePipe(/*parent_reads=*/true);
  if (!out.ok()) return out.status();
  absl::StatusOr<Pipe> err = MakePipe(/*parent_reads=*/true);
  if (!err.ok()) return err.status();
  std::optional<Pipe> progress;
  if (spec.on_progress) {
    absl::StatusOr<Pipe> p = MakePipe(/*parent_reads=*/true, kProgressFd + 1);
    if (!p.ok()) return p.status();
    progress = *std::move(p);
  }

  SpawnSetup setup;
  // dup2 clears close-on-exec on 0, 1, 2 (and kProgressFd); every other fd the child
  // could inherit (ours are all close-on-exec, a library's might not be) is closed.
  int rc = posix_spawn_file_actions_adddup2(&setup.actions, in->read.get(), STDIN_FILENO);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, out->write.get(), STDOUT_FILENO);
  if (rc == 0) rc = posix_spawn_file_actions_adddup2(&setup.actions, err->write.get(), STDERR_FILENO);
  if (rc == 0 && progress) rc = posix_spawn_file_actions_adddup2(&setup.actions, progress->write.get(), kProgressFd);
  if (rc == 0) rc = posix_spawn_file_actions_addclosefrom_np(&setup.actions, progress ? kProgressFd + 1 : 3);
  if (rc == 0 && !spec.cwd.empty()) rc = posix_spawn_file_actions_addchdir_np(&setup.actions, spec.cwd.c_str());
  if (rc != 0) return SystemError(rc, "posix_spawn_file_actions");

  // A process group of its own (pgid = pid), so timeouts reach its descendants; the
  // executor's blocked signals (SIGTERM, SIGINT) and ignored ones must not carry over.
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  rc = posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  if (rc == 0) rc = posix_spawnattr_setpgroup(&setup.attr, 0);
  if (rc == 0) rc = posix_spawnattr_setsigmask(&setup.attr, &empty);
  if (rc == 0) rc = posix_spawnattr_setsigdefault(&setup.attr, &all);
  if (rc != 0) return SystemError(rc, "posix_spawnattr");

  std::vector<std::string> argv_strings = spec.argv;
  std::vector<std::string> env_strings = BuildEnvironment(spec);
  std::vector<char*> argv = CStrings(argv_strings);
  std::vector<char*> envp = CStrings(env_strings);

  SpawnedChild child;
  rc = posix_spawn(&child.pid, argv[0], &setup.actions, &setup.attr, argv.data(), envp.data());
  if (rc != 0) {
    return SystemError(rc, absl::StrCat("cannot start \"", spec.argv[0], "\"",
                                        spec.cwd.empty() ? "" : absl::StrCat(" in \"", spec.cwd, "\"")));
  }
  child.spawned_at = clock.Now();

  // glibc's <sys/pidfd.h> lacks extern "C"; the syscall is what it wraps.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, child.pid, 0));  // close-on-exec by definition
  if (pidfd < 0) {
    int error = errno;
    kill(-child.pid, SIGKILL);  // the child is unreaped: its pid still names its group
    while (waitpid(child.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return SystemError(error, "pidfd_open");
  }
  child.pidfd = UniqueFd(pidfd);
  child.stdin_fd = std::move(in->write);
  child.stdout_fd = std::move(out->read);
  child.stderr_fd = std::move(err->read);
  if (progress) child.progress_fd = std::move(progress->read);
  return child;  // the child's pipe ends (the progress write end too) close here
}

// write(2) that turns a closed pipe into EPIPE without raising SIGPIPE in the process
// (whose default action would kill the executor). SIGPIPE is thread-directed, so it is
// blocked in this thread around the write and a SIGPIPE the write raised is consumed.
ssize_t WriteWithoutSigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_only, old;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
  ssize_t n = write(fd, data, size);
  int error = errno;
  if (n < 0 && error == EPIPE && !sigismember(&old, SIGPIPE)) {
    timespec zero{};
    while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = error;
  return n;
}

// The buffer pipes are read into: one per (loop) thread, on the heap. A thread_local
// array would take its size of static TLS in every thread of the process, and threads
// started with small stacks (civetweb's, for /metrics) then fail with EINVAL.
std::span<char> ReadBuffer() {
  constexpr std::size_t kBytes = 64 << 10;
  static thread_local std::unique_ptr<char[]> buffer;
  if (buffer == nullptr) buffer = std::make_unique_for_overwrite<char[]>(kBytes);
  return {buffer.get(), kBytes};
}

// Reads up to `budget` bytes from non-blocking `fd`, passing each chunk to `consume`.
// Returns true at EOF or on a read error (the stream is finished), false when the pipe
// is empty or the budget is spent.
template <typename Consume>
bool ReadChunks(int fd, std::size_t budget, Consume consume) {
  std::span<char> scratch = ReadBuffer();
  while (budget > 0) {
    ssize_t n = read(fd, scratch.data(), std::min(scratch.size(), budget));
    if (n > 0) {
      std::size_t got = static_cast<std::size_t>(n);
      consume(std::string_view(scratch.data(), got));
      budget -= got;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    return !(n < 0 && errno == EAGAIN);
  }
  return false;
}

// One output stream: keeps the first `cap` bytes, reads and discards the rest.
struct Capture {
  UniqueFd fd;
  std::size_t cap = 0;
  std::string data;
  bool truncated = false;
  std::uint64_t total = 0;  // bytes read, kept or not
  bool watched = false;     // registered with the loop

  // See ReadChunks.
  bool ReadSome(std::size_t budget) {
    return ReadChunks(fd.get(), budget, [this](std::string_view chunk) {
      std::size_t keep = std::min(chunk.size(), cap - data.size());
      data.append(chunk.data(), keep);
      if (keep < chunk.size()) truncated = true;
      total += chunk.size();
    });
  }
};

// The progress pipe: lines cut and parsed, the latest well-formed one passed on.
struct ProgressInput {
  UniqueFd fd;
  ProgressLineSplitter splitter;
  bool watched = false;  // registered with the loop

  // Reads up to `budget` bytes (see ReadChunks); at the end of the stream, its last
  // unterminated line counts too. Returns whether the stream is finished, and in
  // *latest the last well-formed line read, if any.
  bool ReadSome(std::size_t budget, std::optional<ProgressLine>* latest) {
    auto keep = [latest](ProgressLine line) { *latest = std::move(line); };
    bool finished = ReadChunks(fd.get(), budget, [&](std::string_view chunk) {
      splitter.Feed(absl::string_view(chunk.data(), chunk.size()), keep);
    });
    if (finished) splitter.Finish(keep);
    return finished;
  }
};

// The parent's side of one running child, living in RunProcess's frame: feeds stdin,
// collects output and observes the exit, all from loop callbacks. The destructor is
// the safety net for a frame destroyed mid-run: it SIGKILLs the group and reaps.
class Child {
 public:
  // `spec` outlives the Child; its on_progress is called from loop callbacks.
  Child(runtime::EventLoop& loop, SpawnedChild spawned, ProcessSpec& spec)
      : loop_(loop),
        pid_(spawned.pid),
        spawned_at_(spawned.spawned_at),
        pidfd_(std::move(spawned.pidfd)),
        stdin_fd_(std::move(spawned.stdin_fd)),
        stdin_data_(spec.stdin_data),
        on_progress_(spec.on_progress) {
    stdout_.fd = std::move(spawned.stdout_fd);
    stdout_.cap = spec.max_stdout_bytes;
    stderr_.fd = std::move(spawned.stderr_fd);
    stderr_.cap = spec.max_stderr_bytes;
    progress_.fd = std::move(spawned.progress_fd);
  }

  ~Child() {
    if (!reaped_) {
      kill(-pid_, SIGKILL);
      while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (pidfd_watched_) loop_.RemoveReader(pidfd_.get()).IgnoreError();
    CloseStdin();
    Close(stdout_);
    Close(stderr_);
    CloseProgress();
  }

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  runtime::Event& exited() { return exited_; }
  TimePoint spawned_at() const { return spawned_at_; }

  // Starts watching the exit and the output and starts writing stdin.
  absl::Status Start() {
    if (absl::Status s = loop_.AddReader(pidfd_.get(), [this] { OnExit(); }); !s.ok()) return s;
    pidfd_watched_ = true;
    for (Capture* capture : {&stdout_, &stderr_}) {
      if (absl::Status s = loop_.AddReader(capture->fd.get(), [this, capture] { OnOutput(*capture); }); !s.ok()) {
        return s;
      }
      capture->watched = true;
    }
    if (progress_.fd.valid()) {
      if (absl::Status s = loop_.AddReader(progress_.fd.get(), [this] { OnProgress(); }); !s.ok()) return s;
      progress_.watched = true;
    }
    if (WriteStdin()) return absl::OkStatus();
    // The payload does not fit the pipe: wait for room. The loop watches readability
    // only, so the pipe's writability goes through an epoll set of its own, which is
    // readable whenever the pipe is writable (or broken).
    stdin_epoll_.Reset(epoll_create1(EPOLL_CLOEXEC));
    if (!stdin_epoll_.valid()) return SystemError(errno, "epoll_create1");
    epoll_event ev{};
    ev.events = EPOLLOUT;
    if (epoll_ctl(stdin_epoll_.get(), EPOLL_CTL_ADD, stdin_fd_.get(), &ev) != 0) {
      return SystemError(errno, "epoll_ctl(stdin)");
    }
    if (absl::Status s = loop_.AddReader(stdin_epoll_.get(), [this] { WriteStdin(); }); !s.ok()) return s;
    stdin_watched_ = true;
    return absl::OkStatus();
  }

  // Sends `signal` to the child's process group. Only while the child is unreaped, so
  // its pid still names the group and cannot have been reused.
  void SignalGroup(int signal) {
    if (!reaped_) kill(-pid_, signal);
  }

  // After the exit and the group's end: reads what is left in the pipes, closes
  // everything and fills in the outcome. INTERNAL if the exit status was lost.
  absl::Status Finish(ProcessResult& result) {
    CloseStdin();
    for (Capture* capture : {&stdout_, &stderr_}) {
      if (capture->fd.valid()) capture->ReadSome(kFinalDrainBytes);
      Close(*capture);
    }
    if (progress_.fd.valid()) ReadProgress(kFinalDrainBytes);
    CloseProgress();
    result.stdout_data = std::move(stdout_.data);
    result.stdout_truncated = stdout_.truncated;
    result.stdout_bytes = stdout_.total;
    result.stderr_data = std::move(stderr_.data);
    result.stderr_truncated = stderr_.truncated;
    result.stderr_bytes = stderr_.total;
    result.progress_lines = progress_.splitter.accepted();
    result.malformed_progress_lines = progress_.splitter.malformed();
    result.run_duration = exited_at_ - spawned_at_;
    if (wait_error_ != 0) {
      return SystemError(wait_error_, absl::StrCat("waitpid(", pid_, ") (is SIGCHLD ignored, or are children reaped elsewhere?)"));
    }
    if (WIFEXITED(status_)) {
      result.exit_code = WEXITSTATUS(status_);
    } else {
      result.term_signal = WTERMSIG(status_);
    }
    return absl::OkStatus();
  }

 private:
  // The pidfd is readable: the child has exited and is a zombie.
  void OnExit() {
    // Kill what the child leaves behind while its zombie still holds the group's id.
    kill(-pid_, SIGKILL);
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == 0 || (r < 0 && errno == EINTR)) return;  // not yet reapable: level-triggered, called again
    if (r < 0) wait_error_ = errno;
    status_ = status;
    reaped_ = true;
    exited_at_ = loop_.Now();
    loop_.RemoveReader(pidfd_.get()).IgnoreError();  // registered, on the loop thread: cannot fail
    pidfd_watched_ = false;
    pidfd_.Reset();
    exited_.Set();
  }

  void OnOutput(Capture& capture) {
    if (capture.ReadSome(kReadBudgetPerWakeup)) Close(capture);
  }

  void OnProgress() {
    if (ReadProgress(kReadBudgetPerWakeup)) CloseProgress();
  }

  // Reads the progress pipe and passes the latest well-formed line on. Returns whether
  // the stream is finished.
  bool ReadProgress(std::size_t budget) {
    std::optional<ProgressLine> latest;
    bool finished = progress_.ReadSome(budget, &latest);
    if (latest) on_progress_(*std::move(latest));
    return finished;
  }

  void CloseProgress() {
    if (progress_.watched) loop_.RemoveReader(progress_.fd.get()).IgnoreError();  // registered: cannot fail
    progress_.watched = false;
    progress_.fd.Reset();
  }

  // Writes as much of the payload as the pipe takes. Returns true when stdin is
  // finished (all written and closed, or the child closed its end), false if the pipe
  // is full.
  bool WriteStdin() {
    while (stdin_written_ < stdin_data_.size()) {
      ssize_t n = WriteWithoutSigpipe(stdin_fd_.get(), stdin_data_.data() + stdin_written_,
                                      stdin_data_.size() - stdin_written_);
      if (n > 0) {
        stdin_written_ += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return false;
      break;  // EPIPE: the child closed stdin (or exited) without reading it all
    }
    CloseStdin();
    return true;
  }

  void CloseStdin() {
    if (stdin_watched_) loop_.RemoveReader(stdin_epoll_.get()).IgnoreError();  // registered: cannot fail
    stdin_watched_ = false;
    stdin_epoll_.Reset();
    stdin_fd_.Reset();  // EOF for the child
  }

  void Close(Capture& capture) {
    if (capture.watched) loop_.RemoveReader(capture.fd.get()).IgnoreError();  // registered: cannot fail
    capture.watched = false;
    capture.fd.Reset();
  }

  runtime::EventLoop& loop_;
  const pid_t pid_;
  const TimePoint spawned_at_;
  TimePoint exited_at_;
  UniqueFd pidfd_;
  bool pidfd_watched_ = false;
  bool reaped_ = false;
  int status_ = 0;
  int wait_error_ = 0;
  runtime::Event exited_;

  UniqueFd stdin_fd_;
  UniqueFd stdin_epoll_;
  bool stdin_watched_ = false;
  std::string_view stdin_data_;
  std::size_t stdin_written_ = 0;

  Capture stdout_;
  Capture stderr_;
  ProgressInput progress_;
  absl::AnyInvocable<void(ProgressLine)>& on_progress_;
};

// Waits for `exited` (until `deadline`, if any) and returns whether it is set. A
// cancellation does not end the wait: it is recorded in *cancelled, because the
// child must be stopped and reaped whatever the caller wants.
runtime::Task<bool> WaitAbsorbingCancel(runtime::Event& exited, std::optional<TimePoint> deadline, bool* cancelled) {
  for (;;) {
    try {
      if (!deadline) {
        co_await exited.Wait();
        co_return true;
      }
      co_return co_await exited.WaitUntil(*deadline);
    } catch (const runtime::CancelledError&) {
      *cancelled = true;
    }
  }
}

// Reaps the group's members that have become this process's children (orphans, when
// it is a subreaper or PID 1), so their end does not wait on some other reaper. Called
// only after the group's leader is reaped: it cannot take a status OnExit expects.
void ReapAdoptedMembers(pid_t pgid) {
  for (;;) {
    siginfo_t info{};
    if (waitid(P_PGID, static_cast<id_t>(pgid), &info, WEXITED | WNOHANG) != 0 || info.si_pid == 0) return;
  }
}

// Waits until no process is left in group `pgid`, polling with back-off (there is no
// event for it). Returns false if some are still there after kGroupExitWait, or exist
// but cannot be signalled. Absorbs cancellation like WaitAbsorbingCancel.
runtime::Task<bool> WaitForGroupExit(runtime::EventLoop& loop, pid_t pgid, bool* cancelled) {
  const TimePoint give_up = loop.Now() + kGroupExitWait;
  Duration delay = kGroupPollFirst;
  for (;;) {
    ReapAdoptedMembers(pgid);
    if (kill(-pgid, 0) != 0) co_return errno == ESRCH;
    if (loop.Now() >= give_up) co_return false;
    try {
      co_await runtime::Sleep(delay);
    } catch (const runtime::CancelledError&) {
      *cancelled = true;
    }
    delay = std::min(delay * 2, kGroupPollMax);
  }
}

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev == nullptr ? absl::StrCat("signal ", signal) : absl::StrCat("signal ", signal, " (SIG", abbrev, ")");
}

}  // namespace

absl::Status BecomeChildSubreaper() {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return SystemError(errno, "prctl(PR_SET_CHILD_SUBREAPER)");
  return absl::OkStatus();
}

std::string ProcessResult::Describe() const {
  std::string how = exit_code ? absl::StrCat("exited with code ", *exit_code)
                              : absl::StrCat("killed by ", SignalName(term_signal.value_or(0)));
  if (timed_out) return absl::StrCat("timed out (", how, ")");
  if (cancelled) return absl::StrCat("cancelled (", how, ")");
  return how;
}

runtime::Task<absl::StatusOr<ProcessResult>> RunProcess(runtime::EventLoop& loop, ProcessSpec spec) {
  if (absl::Status s = Validate(spec); !s.ok()) co_return s;
  const TimePoint start = loop.Now();
  // Not cancellable while the spawn runs; a cancellation meanwhile is raised by the
  // first wait below, which then stops the child.
  absl::StatusOr<SpawnedChild> spawned =
      co_await runtime::ToThread([&spec, &loop] { return SpawnChild(spec, loop.clock()); });
  if (!spawned.ok()) co_return spawned.status();

  ProcessResult result;
  result.spawn_latency = spawned->spawned_at - start;
  if (spec.on_started) spec.on_started(result.spawn_latency);
  Child child(loop, *std::move(spawned), spec);
  if (absl::Status s = child.Start(); !s.ok()) {
    // It could not be watched or fed: kill it; the destructor reaps it at once.
    child.SignalGroup(SIGKILL);
    co_return s;
  }
  try {
    bool exited = true;
    if (spec.timeout) {
      exited = co_await child.exited().WaitUntil(common::AddSaturated(child.spawned_at(), *spec.timeout));
    } else {
      co_await child.exited().Wait();
    }
    result.timed_out = !exited;
  } catch (const runtime::CancelledError&) {
    result.cancelled = true;
  }
  if (!child.exited().IsSet()) {
    child.SignalGroup(SIGTERM);
    if (!co_await WaitAbsorbingCancel(child.exited(), loop.Now() + spec.kill_grace, &result.cancelled)) {
      child.SignalGroup(SIGKILL);
      co_await WaitAbsorbingCancel(child.exited(), std::nullopt, &result.cancelled);
    }
  }
  // The exit handler has SIGKILLed the group; wait until its members are gone.
  result.stray_processes = !co_await WaitForGroupExit(loop, child.pid(), &result.cancelled);
  if (absl::Status s = child.Finish(result); !s.ok()) co_return s;
  co_return result;
}

}  // namespace cohort::executor
