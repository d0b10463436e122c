#pragma once

#include "absl/functional/any_invocable.h"
#include "libs/runtime/gate.h"
#include "libs/runtime/runtime.h"
#include "services/console/http_types.h"

namespace cohort::console {

// Lets the HTTP server's threads run API work on the console's event loop, where the
// gRPC clients live: Run() posts the task to the loop and blocks the calling thread
// until it has finished there.
//
// Shutdown: Close() (on the loop) refuses new work — Run() then answers 503 at once —
// and waits for the tasks in flight. The loop must keep running until Close() returns,
// and must not stop while an HTTP thread may still call Run(): stop the HTTP server
// first (from another thread), then Close().
class LoopBridge {
 public:
  explicit LoopBridge(runtime::EventLoop& loop) : loop_(loop) {}

  // Any thread but the loop's. `make` is called on the loop and its task runs there.
  HttpReply Run(absl::AnyInvocable<runtime::Task<HttpReply>()> make);

  // Loop only.
  runtime::Task<void> Close() { return gate_.Close(); }

 private:
  runtime::EventLoop& loop_;
  runtime::Gate gate_;  // loop-only
};

}  // namespace cohort::console
