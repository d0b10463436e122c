#include "libs/auth/broker_client_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, broker_tls_ca, "", "PEM CA bundle that signed the broker's certificate; turns TLS on");
ABSL_FLAG(std::string, broker_tls_cert, "", "PEM client certificate for the broker (mutual TLS)");
ABSL_FLAG(std::string, broker_tls_key, "", "PEM private key of --broker-tls-cert");
ABSL_FLAG(std::string, broker_tls_server_name, "",
          "name to verify in the broker's certificate when it is not the --broker host");
ABSL_FLAG(std::string, broker_token_file, "", "file holding the bearer token sent to the broker");

namespace cohort::auth {

absl::StatusOr<ClientSecurityOptions> BrokerClientSecurityFromFlags() {
  ClientSecurityOptions options;
  options.tls_ca = absl::GetFlag(FLAGS_broker_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_broker_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_broker_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_broker_tls_server_name);
  if (std::string path = absl::GetFlag(FLAGS_broker_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(path);
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }
  return options;
}

}  // namespace cohort::auth
