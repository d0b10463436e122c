#pragma once

#include "absl/status/status.h"

// The logging flags every Cohort binary takes, declared once here:
//   --log-format=text|json   text for people, one JSON object per line for log pipelines
//   --log-level=debug|info|warn|error
// A binary lists them in --help with common::ShowFlagsDefinedIn({..., kLogFlagsFile}).
namespace cohort::log {

// The path fragment of the file that defines the flags, for ShowFlagsDefinedIn.
inline constexpr char kLogFlagsFile[] = "libs/common/log_flags";

// Configures the log from the flags (after absl::ParseCommandLine). INVALID_ARGUMENT
// naming the flag and what is allowed if one is not understood; the log is then left
// as it was.
absl::Status ConfigureFromFlags();

}  // namespace cohort::log
