#pragma once

#include <csignal>
#include <initializer_list>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "libs/runtime/event_loop.h"

namespace cohort::common {

// Turns termination signals (SIGTERM, SIGINT by default) into a callback on an
// EventLoop, so shutdown starts on the loop thread like any other event: the callback
// may touch the service's state, cancel tasks or close a Gate.
//
// How: the signals are blocked and read from a signalfd that the loop watches. A
// signal is delivered to some thread that does not block it, and threads inherit
// their creator's mask, so Install() must run on the main thread before any other
// thread exists (before the thread pool, gRPC, or the metrics server start). Install()
// checks this and fails with FAILED_PRECONDITION when the process already has more
// than one thread. Install at most one watcher per signal.
//
//   runtime::EventLoop loop;
//   runtime::Event stop;  // main awaits it, then drains
//   auto signals = SignalWatcher::Install(loop, [&](int) { stop.Set(); });
//   if (!signals.ok()) { ... }
//   // now start threads, servers, ...
//
// The callback runs on the loop thread, once per signal received (a signal raised
// again before the loop reads it is counted once, as POSIX merges pending signals); it
// must not destroy the watcher.
//
// Child processes inherit the blocked mask through fork and exec: whoever spawns
// them must reset it (posix_spawnattr_setsigmask with an empty set and
// POSIX_SPAWN_SETSIGMASK), or a child will ignore the SIGTERM sent on timeout.
//
// Destroying the watcher (on the loop thread, before the loop) stops the callbacks; the
// signals stay blocked, so a SIGTERM during the rest of shutdown is ignored rather
// than fatal.
class SignalWatcher {
 public:
  // Receives the signal number (SIGTERM, SIGINT, ...).
  using Callback = absl::AnyInvocable<void(int signal_number)>;

  // Blocks `signals` in the calling thread and watches them on `loop`; call on the
  // loop's thread. FAILED_PRECONDITION if other threads exist, INVALID_ARGUMENT for an
  // empty or invalid signal list, INTERNAL if a system call fails.
  static absl::StatusOr<std::unique_ptr<SignalWatcher>> Install(
      runtime::EventLoop& loop, Callback on_signal,
      std::initializer_list<int> signals = {SIGTERM, SIGINT});

  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  SignalWatcher(runtime::EventLoop& loop, int fd, Callback on_signal);
  // Reads every queued signal from the signalfd and calls the callback for each.
  void OnReadable();

  runtime::EventLoop& loop_;
  const int fd_;
  Callback on_signal_;
  bool registered_ = false;  // the loop watches fd_
};

}  // namespace cohort::common
