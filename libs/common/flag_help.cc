#include "libs/common/flag_help.h"

#include <utility>

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"

namespace cohort::common {

void ShowFlagsDefinedIn(std::string directory) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [directory = std::move(directory)](absl::string_view file) {
    return absl::StrContains(file, directory);
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
}

}  // namespace cohort::common
