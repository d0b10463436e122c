#pragma once

#include <string>
#include <vector>

namespace cohort::common {

// Makes --help and --helpshort list the flags defined in files whose path contains one
// of `paths` (e.g. "services/broker/"). Abseil's default lists only flags of a file
// named after the program, which a Cohort binary never has, so --help would show none.
// Call before absl::ParseCommandLine.
void ShowFlagsDefinedIn(std::vector<std::string> paths);

}  // namespace cohort::common
