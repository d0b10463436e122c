#pragma once

#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"
#include "libs/runtime/clock.h"

namespace cohort::rpc {

// How a served unary call ended, for a service's metrics (see ServeObservedUnary in
// observed_unary.h): the method as the service names it, the code the client got, and
// the handler's run time on the loop's monotonic clock.
struct UnaryOutcome {
  absl::string_view method;
  grpc::StatusCode code;
  runtime::Duration elapsed;
};

}  // namespace cohort::rpc
