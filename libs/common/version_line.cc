#include "libs/common/version_line.h"

#include "absl/strings/str_cat.h"
#include "libs/common/version.h"

namespace cohort::common {

std::string VersionLine(absl::string_view program) {
#ifdef NDEBUG
  constexpr char kMode[] = "opt";
#else
  constexpr char kMode[] = "debug";
#endif
  return absl::StrCat(program, " ", kCohortVersion, " (", kMode, ")");
}

}  // namespace cohort::common
