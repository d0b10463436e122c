#include "services/cli/job_filter_flags.h"

#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/cli/output.h"

namespace cohort::cli {
namespace {

constexpr const char* kFilterFlags[] = {"state", "queue",          "kind",          "label",
                                        "since", "until",          "finished-since", "finished-until",
                                        "error-code"};

// Sets the filter's bound `field` from the time flag `flag` when it was given (an
// unset bound stays absent: an empty Timestamp would be a bound at 1970).
absl::Status SetTimeFlag(const FlagSet& flags, absl::string_view flag, const std::string& text, absl::Time now,
                         cohort::v1::JobFilter& filter,
                         google::protobuf::Timestamp* (cohort::v1::JobFilter::*field)()) {
  if (!flags.IsSet(flag)) return absl::OkStatus();
  absl::StatusOr<absl::Time> t = ParseTimeOrAgo(flag, text, now);
  if (!t.ok()) return t.status();
  *(filter.*field)() = common::ToProto(*t);
  return absl::OkStatus();
}

}  // namespace

JobFilterFlags::JobFilterFlags(FlagSet& flags) {
  flags.AddList("state", &states_,
                "only jobs in this state: pending, queued, running, succeeded, failed, cancelled (or a comma list)",
                "STATE");
  flags.Add("queue", &queue_, "only jobs of this queue", "QUEUE");
  flags.Add("kind", &kind_, "only jobs of this kind", "KIND");
  flags.Add("label", &label_, "label selector: k=v, k!=v, k in (a,b), k notin (a,b), k, !k (comma: and)",
            "SELECTOR");
  flags.Add("since", &since_, "only jobs created at or after this: RFC 3339 or a duration ago (1h)", "TIME");
  flags.Add("until", &until_, "only jobs created before this: RFC 3339 or a duration ago (10m)", "TIME");
  flags.Add("finished-since", &finished_since_, "only jobs that ended at or after this (as --since)", "TIME");
  flags.Add("finished-until", &finished_until_,
            "only jobs that ended before this (as --until): --finished-until=168h, ended over a week ago", "TIME");
  flags.Add("error-code", &error_code_, "only failed or cancelled jobs with this error code", "CODE");
}

bool JobFilterFlags::AnyGiven(const FlagSet& flags) {
  for (const char* name : kFilterFlags) {
    if (flags.IsSet(name)) return true;
  }
  return false;
}

absl::StatusOr<absl::Time> ParseTimeOrAgo(absl::string_view flag, absl::string_view text, absl::Time now) {
  absl::Duration ago;
  if (absl::ParseDuration(text, &ago) && ago >= absl::ZeroDuration() && ago != absl::InfiniteDuration()) {
    return now - ago;
  }
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return t;
  return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", common::QuoteBounded(text),
                                                 " is invalid: use RFC 3339 (2026-12-06T10:00:00Z) or a duration "
                                                 "ago such as 30m or 2h"));
}

absl::StatusOr<cohort::v1::JobFilter> JobFilterFlags::Build(const FlagSet& flags) const {
  cohort::v1::JobFilter filter;
  for (const std::string& item : states_) {
    for (absl::string_view name : absl::StrSplit(item, ',', absl::SkipEmpty())) {
      cohort::v1::JobState state;
      if (!ParseJobState(name, &state)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--state ", common::QuoteBounded(name),
                         " is invalid: use pending, queued, running, succeeded, failed or cancelled"));
      }
      filter.add_states(state);
    }
  }
  filter.set_queue(queue_);
  filter.set_kind(kind_);
  filter.set_label_selector(label_);
  filter.set_error_code(error_code_);
  const absl::Time now = absl::Now();
  using cohort::v1::JobFilter;
  for (auto [flag, text, field] : {std::tuple{"since", &since_, &JobFilter::mutable_created_after},
                                   std::tuple{"until", &until_, &JobFilter::mutable_created_before},
                                   std::tuple{"finished-since", &finished_since_, &JobFilter::mutable_finished_after},
                                   std::tuple{"finished-until", &finished_until_, &JobFilter::mutable_finished_before}}) {
    if (absl::Status s = SetTimeFlag(flags, flag, *text, now, filter, field); !s.ok()) return s;
  }
  return filter;
}

}  // namespace cohort::cli
