#include "libs/auth/server_flags.h"

#include <string>

#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain this server presents; with --tls-key turns TLS on");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle; clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(absl::Duration, tls_reload_interval, absl::Seconds(10),
          "how often certificate files are re-read (rotated Secrets reach new connections)");
ABSL_FLAG(std::string, auth_tokens, "",
          "token file (hashed tokens -> principal and scopes, re-read on change); turns authorization on");
ABSL_FLAG(bool, insecure, false, "allow serving plaintext gRPC on a non-loopback address");

namespace cohort::auth {

ServerSecurityOptions ServerSecurityFromFlags() {
  ServerSecurityOptions options;
  options.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  options.reload_interval = absl::GetFlag(FLAGS_tls_reload_interval);
  options.tokens_file = absl::GetFlag(FLAGS_auth_tokens);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  return options;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFromFlags(
    const char* program, absl::string_view flag, const common::HostPort& listen, prometheus::Registry& registry,
    const std::string& service) {
  ServerSecurityOptions options = ServerSecurityFromFlags();
  if (absl::Status s = CheckServerSecurity(options, flag, listen); !s.ok()) return s;
  if (!options.tls() && !IsLoopback(listen)) {
    std::fprintf(stderr, "%s: serving plaintext gRPC on %s (--insecure): anyone who reaches it can read and "
                 "forge calls\n", program, listen.ToString().c_str());
  }
  return MakeServerCredentials(options, listen, registry, service);
}

}  // namespace cohort::auth
