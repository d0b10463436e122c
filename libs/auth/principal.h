#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "grpcpp/security/auth_context.h"
#include "libs/auth/scopes.h"

namespace cohort::auth {

// Who a credential speaks for and what it may do, as the token store grants it.
struct Principal {
  std::string name;                  // "scheduler", "ci-bot": [A-Za-z0-9._@:-]{1,128}
  ScopeSet scopes;
  std::string executor_pattern;      // with `execute`: the Hello.executor_id it may use (glob)
  std::vector<std::string> queue_patterns;  // empty: any queue (glob patterns otherwise)
};

// Properties the authorizer adds to an authorized call's grpc::AuthContext. That
// context is the connection's: they are written by its first admitted call, and every
// later call on it has been checked to hold exactly these grants (authorizer.h).
inline constexpr char kPrincipalProperty[] = "cohort_principal";
inline constexpr char kExecutorPatternProperty[] = "cohort_executor_pattern";
inline constexpr char kQueuePatternProperty[] = "cohort_queue_pattern";  // one per pattern

// The principal the authorizer attached to this call, or "" when the server runs
// without authorization (no token store): then every caller may do everything.
std::string CallerPrincipal(const grpc::AuthContext* context);

// Whether the caller may speak for executor `executor_id`: always when the server runs
// without authorization, otherwise only if the id matches the principal's executor
// pattern (shell glob, fnmatch(3) without flags; an empty pattern matches nothing).
bool MayActAsExecutor(const grpc::AuthContext* context, absl::string_view executor_id);

// Whether the caller may submit to `queue`: always without authorization or when the
// principal has no queue patterns, otherwise only if one of them matches (glob).
bool MayUseQueue(const grpc::AuthContext* context, absl::string_view queue);

// fnmatch(3) glob match, no flags: `*`, `?` and `[...]`.
bool GlobMatches(absl::string_view pattern, absl::string_view text);

}  // namespace cohort::auth
