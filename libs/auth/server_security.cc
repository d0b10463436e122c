#include "libs/auth/server_security.h"

#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "libs/auth/authorizer.h"
#include "libs/auth/token_store.h"

namespace cohort::auth {

bool IsLoopback(const common::HostPort& address) {
  const std::string& host = address.host;
  return host == "localhost" || host == "::1" || host == "[::1]" || absl::StartsWith(host, "127.");
}

absl::Status CheckReadable(absl::string_view what, const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " ", path, " cannot be read"));
  return absl::OkStatus();
}

absl::Status CheckServerSecurity(const ServerSecurityOptions& options, absl::string_view flag,
                                 const common::HostPort& listen) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together: give both or neither");
  }
  if (!options.tls() && !options.tls_client_ca.empty()) {
    return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key (mTLS is TLS first)");
  }
  if (options.reload_interval < absl::Seconds(1)) {
    return absl::InvalidArgumentError("--tls-reload-interval must be at least 1s");
  }
  if (!options.tls() && !options.insecure && !IsLoopback(listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " ", listen.ToString(),
        " is reachable from other machines and would serve plaintext: give --tls-cert and --tls-key, "
        "or --insecure to accept that, or listen on 127.0.0.1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurityOptions& options,
                                                                                const common::HostPort& listen,
                                                                                prometheus::Registry& registry,
                                                                                const std::string& service) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (options.tls()) {
    if (absl::Status s = CheckReadable("--tls-cert", options.tls_cert); !s.ok()) return s;
    if (absl::Status s = CheckReadable("--tls-key", options.tls_key); !s.ok()) return s;
    if (!options.tls_client_ca.empty()) {
      if (absl::Status s = CheckReadable("--tls-client-ca", options.tls_client_ca); !s.ok()) return s;
    }
    auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        options.tls_key, options.tls_cert, options.tls_client_ca,
        static_cast<unsigned int>(absl::ToInt64Seconds(options.reload_interval)));
    grpc::experimental::TlsServerCredentialsOptions tls(provider);
    tls.watch_identity_key_cert_pairs();
    if (!options.tls_client_ca.empty()) {
      tls.watch_root_certs();
      tls.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    } else {
      tls.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    }
    credentials = grpc::experimental::TlsServerCredentials(tls);
  } else if (!options.tokens_file.empty()) {
    // gRPC runs an authorizer only on secure credentials; on loopback, "local" ones
    // (no handshake: the peer must be this machine) carry it over plaintext.
    if (!IsLoopback(listen)) {
      return absl::InvalidArgumentError(
          "--auth-tokens needs TLS (--tls-cert, --tls-key) on a non-loopback address: bearer tokens must not "
          "cross the network in plaintext");
    }
    credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  } else {
    credentials = grpc::InsecureServerCredentials();
  }
  if (!options.tokens_file.empty()) {
    absl::StatusOr<std::shared_ptr<TokenStore>> tokens = TokenStore::Open(options.tokens_file);
    if (!tokens.ok()) return tokens.status();
    credentials->SetAuthMetadataProcessor(std::make_shared<Authorizer>(*std::move(tokens), registry, service));
  }
  return credentials;
}

}  // namespace cohort::auth
