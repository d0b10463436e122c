#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/common/address.h"

namespace cohort::rpc {

// A started gRPC server and the address it actually bound.
struct StartedServer {
  std::unique_ptr<grpc::Server> server;
  common::HostPort bound;  // the listen address with its real port (never 0)
};

// Adds `listen` to `builder` (whose services the caller has registered) and starts the
// server with what every Cohort server guarantees; every binary starts its gRPC
// server through here so that none forgets one:
//  - Its ports are its own. gRPC sets SO_REUSEPORT by default, which let a second
//    server bind a port another one serves and split the clients between two
//    processes (two brokers, two job stores). Here it is off, for `listen` and for any
//    other port the caller added, and a taken `listen` fails the start with
//    UNAVAILABLE "cannot serve gRPC on HOST:PORT: the address is already in use".
//  - A request body that does not parse as the method's request gets
//    INVALID_ARGUMENT with a short message naming the method (gRPC's callback API
//    would answer UNIMPLEMENTED with no message).
//  - It listens with `credentials`: TLS and the authorizer that checks every call's
//    credential and scopes before its handler runs (libs/auth's MakeServerCredentials
//    builds them from the security flags); null means plaintext with no authorization,
//    for tests and loopback development.
// Other failures to bind are explained the same way (see common::ProbeListen). The
// builder's interceptor creators are set here (callers set none).
absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, const common::HostPort& listen,
                                          std::shared_ptr<grpc::ServerCredentials> credentials = nullptr);

// How long a stopping server lets calls in flight finish before it cancels them.
// Zero: a service's state is durable before it replies, so clients retry safely, and
// gRPC's callback server waits out any grace in full even when idle.
inline constexpr absl::Duration kShutdownGrace = absl::ZeroDuration();

// Stops `server`: refuses new calls, cancels those in flight at once (they end
// CANCELLED; stream writes pending on a client that does not read complete with
// false) and blocks until their handlers have returned. Handlers that run on an event
// loop need that loop running meanwhile: call this from another thread
// (runtime::ToThread) or while the loop runs elsewhere.
void StopServer(grpc::Server& server);

}  // namespace cohort::rpc
