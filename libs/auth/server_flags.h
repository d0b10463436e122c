#pragma once

#include "libs/auth/server_security.h"

namespace cohort::auth {

// The server security flags every Cohort server binary links (--tls-cert, --tls-key,
// --tls-client-ca, --tls-reload-interval, --auth-tokens, --insecure), read into options.
ServerSecurityOptions ServerSecurityFromFlags();

}  // namespace cohort::auth
