#include "services/executor/allowlist.h"

#include <fnmatch.h>

#include "absl/strings/string_view.h"
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace cohort::executor {
namespace {

bool IsNormalizedAbsolute(absl::string_view path) {
  if (path.size() < 2 || path[0] != '/') return false;
  for (absl::string_view part : absl::StrSplit(path.substr(1), '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return path.find('\0') == absl::string_view::npos;
}

}  // namespace

absl::StatusOr<CommandAllowlist> CommandAllowlist::Create(std::vector<std::string> patterns) {
  for (const std::string& pattern : patterns) {
    if (pattern.empty() || pattern[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("allowlist pattern \"", pattern, "\" is invalid: use an absolute path or a glob such as /usr/bin/*"));
    }
  }
  return CommandAllowlist(std::move(patterns));
}

absl::Status CommandAllowlist::Check(const std::vector<std::string>& argv) const {
  if (argv.empty()) return absl::InvalidArgumentError("command is empty: give the program's absolute path first");
  const std::string& program = argv[0];
  if (!IsNormalizedAbsolute(program)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "command \"", program, "\" is invalid: use an absolute path without empty, \".\" or \"..\" components"));
  }
  for (const std::string& pattern : patterns_) {
    if (fnmatch(pattern.c_str(), program.c_str(), FNM_PATHNAME | FNM_PERIOD) == 0) return absl::OkStatus();
  }
  std::string allowed =
      patterns_.empty() ? "none (no exec allowlist is configured)"
                        : absl::StrJoin(patterns_, ", ", [](std::string* out, const std::string& p) {
                            absl::StrAppend(out, "\"", p, "\"");
                          });
  return absl::PermissionDeniedError(
      absl::StrCat("command \"", program, "\" is not allowed by this executor: allowed are ", allowed));
}

}  // namespace cohort::executor
