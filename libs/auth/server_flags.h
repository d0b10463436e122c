#pragma once

#include "libs/auth/server_security.h"

namespace cohort::auth {

// The server security flags every Cohort server binary links (--tls-cert, --tls-key,
// --tls-client-ca, --tls-reload-interval, --auth-tokens, --insecure), read into options.
ServerSecurityOptions ServerSecurityFromFlags();

// What a server binary does with those flags before it listens on `listen` (given by
// `flag`): checks them (CheckServerSecurity), says on stderr when it serves plaintext
// beyond loopback because of --insecure ("<program>: serving plaintext gRPC on ...
// (--insecure)"), and builds the credentials (MakeServerCredentials) with the denial
// counter in `registry`. Errors name the flag or file; callers exit 2 on them.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags(
    const char* program, absl::string_view flag, const common::HostPort& listen, prometheus::Registry& registry,
    const std::string& service);

}  // namespace cohort::auth
