#include "libs/common/flag_help.h"

#include <utility>

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace cohort::common {

void ShowFlagsDefinedIn(std::vector<std::string> paths) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [paths = std::move(paths)](absl::string_view file) {
    for (const std::string& path : paths) {
      if (absl::StrContains(file, path)) return true;
    }
    return false;
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
}

}  // namespace cohort::common
