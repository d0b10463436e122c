#include "libs/common/signals.h"

#include <dirent.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cohort::common {
namespace {

// The number of threads in this process, from /proc/self/task; -1 if unknown.
int CountThreads() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  int count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  closedir(dir);
  return count;
}

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SignalWatcher>> SignalWatcher::Install(
    runtime::EventLoop& loop, Callback on_signal, std::initializer_list<int> signals) {
  if (signals.size() == 0) return absl::InvalidArgumentError("cannot watch signals: none given");
  if (const int threads = CountThreads(); threads > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot watch signals: the process already has ", threads,
        " threads, which would receive them unblocked; install the signal watcher at the "
        "start of main(), before any thread starts"));
  }
  sigset_t set;
  sigemptyset(&set);
  for (int signal_number : signals) {
    if (sigaddset(&set, signal_number) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("cannot watch signal ", signal_number,
                                                     ": not a valid signal number"));
    }
  }
  if (const int error = pthread_sigmask(SIG_BLOCK, &set, nullptr); error != 0) {
    errno = error;
    return ErrnoError("cannot block the signals to watch");
  }
  const int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot create a signalfd");
  // From here the watcher owns fd and closes it on every path.
  std::unique_ptr<SignalWatcher> watcher(new SignalWatcher(loop, fd, std::move(on_signal)));
  if (absl::Status status = loop.AddReader(fd, [w = watcher.get()] { w->OnReadable(); });
      !status.ok()) {
    return status;
  }
  watcher->registered_ = true;
  return watcher;
}

SignalWatcher::SignalWatcher(runtime::EventLoop& loop, int fd, Callback on_signal)
    : loop_(loop), fd_(fd), on_signal_(std::move(on_signal)) {}

SignalWatcher::~SignalWatcher() {
  if (registered_) {
    if (absl::Status status = loop_.RemoveReader(fd_); !status.ok()) {
      // Only possible if the loop already dropped the fd: nothing is left to undo, and
      // the fd is closed below either way.
      status.IgnoreError();
    }
  }
  close(fd_);
}

void SignalWatcher::OnReadable() {
  signalfd_siginfo info;
  while (true) {
    const ssize_t n = read(fd_, &info, sizeof info);
    if (n != static_cast<ssize_t>(sizeof info)) break;  // EAGAIN: nothing more queued
    on_signal_(static_cast<int>(info.ssi_signo));
  }
}

}  // namespace cohort::common
