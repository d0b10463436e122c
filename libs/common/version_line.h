#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace cohort::common {

// What `<program> --version` prints (one line, no newline): the program, Cohort's
// release (version.h) and the build mode, e.g. "cohortctl 0.1.0 (opt)". Bazel redacts
// __DATE__ and __TIME__ for reproducible builds, so no build time is shown.
std::string VersionLine(absl::string_view program);

}  // namespace cohort::common
