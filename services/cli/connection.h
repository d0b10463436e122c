#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "libs/auth/channel_credentials.h"

namespace cohort::cli {

// Opens a channel to the Cohort `service` ("broker", "scheduler") at `address`
// (HOST:PORT, given by `flag`) and checks that something answers there within
// `timeout` over `security` (TLS, bearer token), with a fail-fast gRPC health check: a refused connection or an unknown
// host fails at once, a silent address when the timeout runs out. Any answer counts,
// even an error (a server without the health service is still there). For a list of a
// broker group's replicas, a refusal by all of them (no leader: an election is under
// way) is tried again, with backoff, until the timeout.
//
// Errors, each one line naming the service and the address:
//   INVALID_ARGUMENT   the address is malformed (`--server "x" is invalid: ...`)
//   UNAVAILABLE        `cannot reach broker at 127.0.0.1:1: connection refused`
//   DEADLINE_EXCEEDED  `cannot reach broker at 10.0.0.1:7070: no answer within 5s`
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(absl::string_view service, absl::string_view flag,
                                                       absl::string_view address, absl::Duration timeout,
                                                       const auth::ClientSecurityOptions& security = {});

// The gist of a gRPC transport error, for people: the last clause of the message,
// lower-cased ("... Failed to connect to remote host: Connection refused" becomes
// "connection refused").
std::string TransportReason(absl::string_view grpc_message);

}  // namespace cohort::cli
