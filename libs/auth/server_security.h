#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "libs/common/address.h"
#include "prometheus/registry.h"

namespace cohort::auth {

// How a server authenticates its transport and its callers (flags in server_flags.h).
struct ServerSecurityOptions {
  std::string tls_cert;       // PEM certificate chain; with tls_key turns TLS on
  std::string tls_key;        // PEM private key
  std::string tls_client_ca;  // PEM CA bundle: clients must present a certificate it signed (mTLS)
  absl::Duration reload_interval = absl::Seconds(10);  // files re-read this often
  std::string tokens_file;    // token store (token_store.h); turns authorization on
  bool insecure = false;      // allows plaintext on a non-loopback address

  bool tls() const { return !tls_cert.empty(); }
};

// Refuses a configuration that would serve plaintext beyond this machine: a listen
// address that is not loopback without TLS needs `insecure`. INVALID_ARGUMENT naming
// `flag`, the address and both ways out. Also checks that cert and key come together
// and that a client CA or token file is not set without what makes it meaningful.
absl::Status CheckServerSecurity(const ServerSecurityOptions& options, absl::string_view flag,
                                 const common::HostPort& listen);

// Whether `host` is a loopback address or "localhost".
bool IsLoopback(const common::HostPort& address);

// Server credentials for serving `options` on `listen`: TLS (certificate files watched
// and re-read every reload_interval, so a rotated Secret is served to new connections
// while established ones keep going; TLS 1.2 is the minimum, gRPC's default for these
// credentials) or plaintext, and with a token file an Authorizer (authorizer.h)
// counting refusals in `registry` as cohort_<service>_auth_denied_total. Tokens without
// TLS are accepted on loopback only (INVALID_ARGUMENT elsewhere). Unreadable files fail
// here, naming the file (gRPC would only fail handshakes later).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurityOptions& options,
                                                                                const common::HostPort& listen,
                                                                                prometheus::Registry& registry,
                                                                                const std::string& service);

// NOT_FOUND naming `what` and `path` unless the file can be opened for reading.
absl::Status CheckReadable(absl::string_view what, const std::string& path);

}  // namespace cohort::auth
