#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/status/statusor.h"

namespace cohort::common {

// For a binary's main(): a bad flag or a failed start-up step ends the process with
// exit code 2 and one line on stderr, "<program>: <reason>", as design.md asks.
[[noreturn]] inline void Die(const char* program, const std::string& reason) {
  std::fprintf(stderr, "%s: %s\n", program, reason.c_str());
  std::exit(2);
}

// The value, or Die with the status message.
template <typename T>
T OrDie(const char* program, absl::StatusOr<T> value) {
  if (!value.ok()) Die(program, std::string(value.status().message()));
  return std::move(*value);
}

}  // namespace cohort::common
