#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace cohort::common {

// Chooses the flags a binary's --help lists: those defined in files whose path
// contains one of `paths` (e.g. "services/broker/"). Abseil's own --help would list
// only flags of a file named after the program, which a Cohort binary never has.
// Call before ParseFlagsOrExit.
void ShowFlagsDefinedIn(std::vector<std::string> paths);

// What --help prints: "usage: <program> [flags]", the program's usage message, then
// the chosen flags sorted by name, spelled with dashes as the README does
// ("--data-dir=VALUE"), each with its help and its default, then --help and --version.
std::string FlagHelp(absl::string_view program);

}  // namespace cohort::common
