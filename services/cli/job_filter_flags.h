#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/cli/flag_set.h"

namespace cohort::cli {

// The flags that choose jobs, shared by `ls` and the bulk commands, and the JobFilter
// they make (broker.proto):
//   --state=S (repeatable or a comma list), --queue=Q, --kind=K,
//   --label=SELECTOR (Kubernetes style: k=v,k!=v,k in (a,b), !k),
//   --since=T / --until=T on the creation time, --finished-since=T / --finished-until=T
//   on the end time (a job that has not ended matches neither), --error-code=CODE.
// A time is RFC 3339 (2026-12-06T10:00:00Z) or a duration meaning that long ago (1h).
class JobFilterFlags {
 public:
  explicit JobFilterFlags(FlagSet& flags);

  // The filter, or INVALID_ARGUMENT naming the flag (a bad state or time); the label
  // selector is checked by the broker.
  absl::StatusOr<cohort::v1::JobFilter> Build(const FlagSet& flags) const;

  // Whether any filter flag was given.
  static bool AnyGiven(const FlagSet& flags);

 private:
  std::vector<std::string> states_;
  std::string queue_;
  std::string kind_;
  std::string label_;
  std::string since_;
  std::string until_;
  std::string finished_since_;
  std::string finished_until_;
  std::string error_code_;
};

// Parses a --since/--until/--finished-* value: RFC 3339, or a duration before `now`.
absl::StatusOr<absl::Time> ParseTimeOrAgo(absl::string_view flag, absl::string_view text, absl::Time now);

}  // namespace cohort::cli
