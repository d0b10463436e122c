#include "libs/common/label_cap.h"

namespace cohort::common {

bool LabelCap::IsOther(absl::string_view value) {
  absl::MutexLock lock(&mu_);
  if (named_.contains(value)) return false;
  if (named_.size() >= limit_) return true;
  named_.emplace(value);
  return false;
}

std::string LabelCap::Label(absl::string_view value) {
  return IsOther(value) ? std::string(kOtherLabel) : std::string(value);
}

}  // namespace cohort::common
