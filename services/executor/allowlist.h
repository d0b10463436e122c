#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace cohort::executor {

// Which programs an executor may run for `exec` jobs. Immutable once built, so it may
// be shared between threads.
//
// A pattern is an absolute path ("/usr/bin/python3") or an fnmatch(3) glob over one
// ("/usr/bin/*", "/opt/tools/bin/tool-[0-9]*"), matched with FNM_PATHNAME | FNM_PERIOD:
// a wildcard never crosses a '/' or matches a leading '.', so "/usr/bin/*" allows
// "/usr/bin/env" but not "/usr/bin/sub/x" or "/usr/bin/.hidden". Programs are matched
// as given, without resolving symlinks: allowing a directory allows whatever its
// entries point to. A default-constructed allowlist allows nothing.
//
//   absl::StatusOr<CommandAllowlist> allow = CommandAllowlist::Create({"/usr/bin/*"});
//   absl::Status s = allow->Check({"/bin/rm", "-rf", "/"});  // PERMISSION_DENIED
class CommandAllowlist {
 public:
  CommandAllowlist() = default;

  // INVALID_ARGUMENT if a pattern is empty or not absolute.
  static absl::StatusOr<CommandAllowlist> Create(std::vector<std::string> patterns);

  // OK if argv[0] matches a pattern. INVALID_ARGUMENT for an empty argv or a program
  // path that is not absolute and normalized (no empty, "." or ".." component, which
  // could otherwise walk out of a globbed directory); PERMISSION_DENIED, naming the
  // program and the patterns, for anything else.
  absl::Status Check(const std::vector<std::string>& argv) const;

  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  explicit CommandAllowlist(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}

  std::vector<std::string> patterns_;
};

}  // namespace cohort::executor
