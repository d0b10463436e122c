#include "libs/auth/broker_client_flags.h"

#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, broker_tls_ca, "", "PEM CA bundle that signed the broker's certificate; turns TLS on");
ABSL_FLAG(std::string, broker_tls_cert, "", "PEM client certificate for the broker (mutual TLS)");
ABSL_FLAG(std::string, broker_tls_key, "", "PEM private key of --broker-tls-cert");
ABSL_FLAG(std::string, broker_tls_server_name, "",
          "name to verify in the broker's certificate when it is not the --broker host");
ABSL_FLAG(std::string, broker_token_file, "", "file holding the bearer token sent to the broker");
ABSL_FLAG(absl::Duration, broker_keepalive, cohort::auth::ClientSecurityOptions{}.keepalive,
          "ping the broker after this long without traffic and redial when a ping goes unanswered for "
          "min(this, 10s): a half-open connection (a dead node, a NAT that forgot the flow) is noticed in "
          "seconds, not after TCP's ~15 minutes; 1s to 1h");

namespace cohort::auth {

absl::StatusOr<ClientSecurityOptions> BrokerClientSecurityFromFlags() {
  ClientSecurityOptions options;
  options.tls_ca = absl::GetFlag(FLAGS_broker_tls_ca);
  options.tls_cert = absl::GetFlag(FLAGS_broker_tls_cert);
  options.tls_key = absl::GetFlag(FLAGS_broker_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_broker_tls_server_name);
  options.keepalive = absl::GetFlag(FLAGS_broker_keepalive);
  if (options.keepalive < absl::Seconds(1) || options.keepalive > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--broker-keepalive=", absl::FormatDuration(options.keepalive),
                                                   " is out of range: it must be from 1s to 1h"));
  }
  if (std::string path = absl::GetFlag(FLAGS_broker_token_file); !path.empty()) {
    absl::StatusOr<std::string> token = ReadTokenFile(path);
    if (!token.ok()) return token.status();
    options.token = *std::move(token);
  }
  return options;
}

}  // namespace cohort::auth
