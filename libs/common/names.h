#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cohort::common {

// The rule for every name Cohort takes from a caller that also labels metrics or keys
// storage: queue names, job kinds, schedule ids.
inline constexpr absl::string_view kNameRule = "[a-z0-9._-]{1,64}";

// True for a name that follows kNameRule.
bool IsValidName(absl::string_view name);

// OK for a valid name; otherwise INVALID_ARGUMENT
//   <what><quoted name> is invalid: use [a-z0-9._-]{1,64}
// quoting at most a bounded prefix of the name (quote.h). `what` names the field with
// its separator, e.g. "queue ", "jobs[0].queue " or "--queues: ".
//
//   CheckName("A B", "queue ")  // queue "A B" is invalid: use [a-z0-9._-]{1,64}
absl::Status CheckName(absl::string_view name, absl::string_view what);

}  // namespace cohort::common
