#pragma once

#include <algorithm>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "libs/common/backoff.h"
#include "libs/common/proto_time.h"
#include "services/cli/context.h"

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

// Makes a waiting call (Gather, Wait, WaitFor: `call(context, request, response)`) and,
// while it ends Retryable (a broker restart or a leader failover: the channel then
// dials --server's list again) and `end` has not passed, makes it again after a
// Reconnect backoff. Each try asks the broker for what is left until `end` (the
// request's timeout; none when `end` is InfiniteFuture), so a wait re-issued on a new
// leader ends when the first would have; the wait's meaning is unchanged (nothing is
// cancelled by a lost connection: these commands never set cancel_on_disconnect).
template <typename Request, typename Response, typename Call>
grpc::Status WaitAcrossFailover(const Context& ctx, absl::string_view command, absl::string_view resuming,
                                absl::Time end, Request& request, Response* response, Call call) {
  Reconnect reconnect{std::string(command)};
  while (true) {
    const absl::Duration left =
        end == absl::InfiniteFuture() ? absl::InfiniteDuration() : std::max(end - absl::Now(), absl::Milliseconds(1));
    if (end != absl::InfiniteFuture()) *request.mutable_timeout() = common::ToProto(left);
    auto context = ctx.WaitingCall(left);
    grpc::Status status = call(context.get(), request, response);
    if (!Reconnect::Retryable(status) || absl::Now() >= end) return status;
    reconnect.Wait(status, ctx.options().server, resuming);
  }
}

// The end of a wait of `bound` from now (InfiniteFuture for an infinite bound).
inline absl::Time WaitEnd(absl::Duration bound) {
  return bound == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + bound;
}

}  // namespace cohort::cli
