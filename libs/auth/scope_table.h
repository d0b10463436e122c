#pragma once

#include "absl/strings/string_view.h"
#include "libs/auth/scopes.h"

namespace cohort::auth {

// What one gRPC method needs. `path` is the registered name, "/cohort.v1.Broker/Submit".
struct MethodRule {
  absl::string_view path;
  ScopeSet required;  // every one of these; empty: no credential needed (health checks)
};

// The per-RPC scope table: every method of cohort.v1.Broker and cohort.v1.Scheduler,
// the health service (open: probes carry no credential) and server reflection (read).
// Returns null for any other path: the authorizer refuses unknown methods (fail
// closed). The README's "Security" section prints this table; keep them together.
const MethodRule* FindMethodRule(absl::string_view path);

// Every rule, for tests and documentation.
absl::Span<const MethodRule> AllMethodRules();

}  // namespace cohort::auth
