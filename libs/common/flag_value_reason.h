#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace cohort::common {

// The reason a flag's value of type T was refused, when the parser gave none (Abseil's
// marshalling says nothing for a malformed number): what a valid value looks like,
// e.g. "use a whole number from 0 to 4294967295". Used by every binary's flag parser
// and by cohortctl's, so both say the same: `--priority "abc" is invalid: use a whole
// number from -2147483648 to 2147483647`.
template <typename T>
std::string ExpectedValue() {
  if constexpr (std::is_same_v<T, bool>) {
    return "use true or false (or the flag alone for true)";
  } else if constexpr (std::is_integral_v<T>) {
    return absl::StrCat("use a whole number from ", std::numeric_limits<T>::min(), " to ",
                        std::numeric_limits<T>::max());
  } else if constexpr (std::is_floating_point_v<T>) {
    return "use a number such as 0.5 or 10";
  } else if constexpr (std::is_same_v<T, absl::Duration>) {
    return "use a duration such as 250ms, 30s, 5m or 1h30m (\"inf\" for none)";
  } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
    return "use a comma-separated list";
  } else {
    return "not a valid value";
  }
}

}  // namespace cohort::common
