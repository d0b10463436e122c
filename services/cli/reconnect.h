#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "libs/common/backoff.h"

namespace cohort::cli {

// Backoff between the calls of a command that follows the broker for as long as it
// runs (watch, wait-for), so it outlives a broker restart instead of dying with it.
// Waits 100 ms, doubling up to 5 s (common::Backoff, with its jitter), with one line
// on stderr when the broker is lost and one when it is back. Used from one thread.
//
//   Reconnect reconnect("watch");
//   while (true) {
//     ... stream; on each message: reconnect.Connected();
//     if (!Reconnect::Retryable(status)) return ...;
//     reconnect.Wait(status, address, "resuming after event 42");
//   }
class Reconnect {
 public:
  explicit Reconnect(std::string command) : command_(std::move(command)) {}

  // A call that ended this way is worth making again: the broker went away
  // (UNAVAILABLE) or was shutting down (CANCELLED by the server at a restart).
  static bool Retryable(const grpc::Status& status);

  // Sleeps the next backoff step; says on stderr, the first time after a success, that
  // the broker was lost and what happens next (`resuming`).
  void Wait(const grpc::Status& status, absl::string_view address, absl::string_view resuming);

  // A call got an answer: says so if the broker had been lost, and resets the backoff.
  void Connected();

 private:
  std::string command_;
  common::Backoff backoff_{{.initial = absl::Milliseconds(100), .max = absl::Seconds(5)}};
  bool lost_ = false;
};

}  // namespace cohort::cli
