#pragma once

#include "absl/status/statusor.h"
#include "libs/auth/channel_credentials.h"

namespace cohort::auth {

// The flags of services that call the broker (scheduler, executor): --broker-tls-ca,
// --broker-tls-cert, --broker-tls-key, --broker-tls-server-name, --broker-token-file,
// --broker-keepalive. The token file is read here (NOT_FOUND / INVALID_ARGUMENT naming
// it); a keepalive outside 1s..1h is INVALID_ARGUMENT.
absl::StatusOr<ClientSecurityOptions> BrokerClientSecurityFromFlags();

}  // namespace cohort::auth
