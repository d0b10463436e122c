#pragma once

#include <bitset>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace cohort::auth {

// What a principal may do. Every RPC of the Broker and Scheduler services needs the
// scopes the table in scope_table.h gives it; a principal holds a set of them.
enum class Scope : std::uint8_t {
  kSubmit = 0,  // Submit (and its idempotent resubmits)
  kRead,        // GetJob, ListJobs, Watch, the waits, ListQueues, ListExecutors, schedules read
  kCancel,      // CancelJob (and WaitFor, which cancels its job on timeout)
  kAdmin,       // queue pause/resume/limits, retry/delete/bulk operations on jobs, schedules written
  kExecute,     // Connect, bound to the principal's executor-id pattern
  kRelease,     // ReleaseJobs: the scheduler only
};
inline constexpr int kScopeCount = 6;

// A set of scopes; cheap to copy.
using ScopeSet = std::bitset<kScopeCount>;

// "submit", "read", ...: the names used in token files, flags and error messages.
absl::string_view ScopeName(Scope scope);

// Parses a comma-separated list ("submit,read"); "*" means every scope. An unknown
// name is INVALID_ARGUMENT naming it (quoted bounded) and the names allowed.
absl::StatusOr<ScopeSet> ParseScopes(absl::string_view list);

// "submit,read" (in enum order), the inverse of ParseScopes.
std::string FormatScopes(const ScopeSet& scopes);

inline ScopeSet ScopesOf(std::initializer_list<Scope> scopes) {
  ScopeSet set;
  for (Scope s : scopes) set.set(static_cast<std::size_t>(s));
  return set;
}

}  // namespace cohort::auth
