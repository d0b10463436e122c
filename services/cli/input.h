#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cohort::cli {

// The most cohortctl reads from stdin or a file: the broker's largest message.
inline constexpr std::size_t kMaxInputBytes = 64 << 20;

// A payload argument: "-" reads stdin to its end, "@PATH" reads the file, anything
// else is the payload itself. INVALID_ARGUMENT naming the file (or stdin) when it
// cannot be read or is over kMaxInputBytes.
absl::StatusOr<std::string> ReadPayloadArg(absl::string_view arg);

// Job ids from positional arguments; a "-" among them stands for the whitespace-
// separated ids read from stdin (`cohortctl ls -o json | jq ... | cohortctl gather -`).
// INVALID_ARGUMENT when there are none or stdin cannot be read.
absl::StatusOr<std::vector<std::string>> ReadJobIdArgs(const std::vector<std::string>& args);

}  // namespace cohort::cli
