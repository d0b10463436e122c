#include "libs/common/quote.h"

#include "absl/strings/escaping.h"

namespace cohort::common {

std::string QuoteBounded(absl::string_view text, std::size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  std::string out = absl::StrCat("\"", absl::CHexEscape(text.substr(0, max_bytes)), "\"");
  if (cut) absl::StrAppend(&out, "…(", text.size(), " bytes)");
  return out;
}

}  // namespace cohort::common
