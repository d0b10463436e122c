#include "libs/common/names.h"

#include "absl/strings/str_cat.h"
#include "libs/common/quote.h"

namespace cohort::common {
namespace {

constexpr std::size_t kMaxNameBytes = 64;

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'; }

}  // namespace

bool IsValidName(absl::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  for (char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

absl::Status CheckName(absl::string_view name, absl::string_view what) {
  if (IsValidName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, QuoteBounded(name), " is invalid: use ", kNameRule));
}

}  // namespace cohort::common
