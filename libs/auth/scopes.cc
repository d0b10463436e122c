#include "libs/auth/scopes.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "libs/common/quote.h"

namespace cohort::auth {
namespace {

constexpr absl::string_view kNames[kScopeCount] = {"submit", "read", "cancel", "admin", "execute", "release"};

}  // namespace

absl::string_view ScopeName(Scope scope) { return kNames[static_cast<std::size_t>(scope)]; }

absl::StatusOr<ScopeSet> ParseScopes(absl::string_view list) {
  ScopeSet set;
  for (absl::string_view raw : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
    absl::string_view name = absl::StripAsciiWhitespace(raw);
    if (name == "*") {
      set.set();
      continue;
    }
    bool found = false;
    for (int i = 0; i < kScopeCount; ++i) {
      if (kNames[i] == name) {
        set.set(i);
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(absl::StrCat("scope ", common::QuoteBounded(name),
                                                     " is unknown: use submit, read, cancel, admin, execute, "
                                                     "release or * (comma-separated)"));
    }
  }
  return set;
}

std::string FormatScopes(const ScopeSet& scopes) {
  std::vector<absl::string_view> names;
  for (int i = 0; i < kScopeCount; ++i) {
    if (scopes.test(i)) names.push_back(kNames[i]);
  }
  return absl::StrJoin(names, ",");
}

}  // namespace cohort::auth
