#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/label_selector.h"

namespace cohort::broker {

// A v1::JobFilter checked and compiled into a predicate over jobs: every field set
// must hold (AND), an unset field matches every job. Used by ListJobs and by bulk
// operations, so that both select exactly the same jobs.
//
//   absl::StatusOr<JobMatcher> m = JobMatcher::Compile(request.filter(), "filter");
//   if (!m.ok()) return m.status();          // INVALID_ARGUMENT naming the field
//   for (const Job& job : candidates) if (m->Matches(job)) ...
//
// The accessors (states, queue, kind, labels, error code, created and finished ranges) let a caller
// start from the smallest index of candidates and still call Matches on each. Immutable once compiled; copyable.
class JobMatcher {
 public:
  // The most bytes an error_code may have (Error.code is short lower_snake_case).
  static constexpr std::size_t kMaxErrorCodeBytes = 64;

  // Validates every field: states known and not UNSPECIFIED, queue and kind names
  // [a-z0-9._-]{1,64}, the label selector (see LabelSelector), timestamps well formed
  // (common::TimeFromWire) with `after` earlier than `before` when both are set, and
  // error_code at most kMaxErrorCodeBytes. INVALID_ARGUMENT naming `<field>.<name>`
  // otherwise; caller text is quoted only as a bounded prefix.
  static absl::StatusOr<JobMatcher> Compile(const cohort::v1::JobFilter& filter, absl::string_view field = "filter");

  // Also requires the job's queue to be `queue` (ListJobsRequest.queue, which
  // combines with its filter). A different queue from the filter's matches nothing.
  // `queue` must be a valid name; empty leaves the matcher as it is.
  void RestrictQueue(const std::string& queue);
  // Also requires one of `states` (valid, non-UNSPECIFIED); empty leaves it as it is.
  void RestrictStates(const std::vector<cohort::v1::JobState>& states);

  bool Matches(const cohort::v1::Job& job) const;

  // True when no job can match (e.g. two different queues were required).
  bool matches_nothing() const { return nothing_; }
  // The states a match may be in, ascending and distinct; empty means any.
  const std::vector<cohort::v1::JobState>& states() const { return states_; }
  // The queue / kind a match has; empty means any.
  const std::string& queue() const { return queue_; }
  const std::string& kind() const { return kind_; }
  // The label selector (empty: any labels), the error code a match ended with (empty:
  // any), and the creation-time range [after, before) (unset sides: unbounded).
  const LabelSelector& labels() const { return labels_; }
  const std::string& error_code() const { return error_code_; }
  const std::optional<absl::Time>& created_after() const { return created_after_; }
  const std::optional<absl::Time>& created_before() const { return created_before_; }
  // The end-time range [after, before) (unset sides: unbounded); a match has ended.
  const std::optional<absl::Time>& finished_after() const { return finished_after_; }
  const std::optional<absl::Time>& finished_before() const { return finished_before_; }
  // True when every job matches.
  bool matches_all() const;

 private:
  bool nothing_ = false;
  std::vector<cohort::v1::JobState> states_;
  std::string queue_;
  std::string kind_;
  LabelSelector labels_;
  std::optional<absl::Time> created_after_, created_before_, finished_after_, finished_before_;
  std::string error_code_;
};

}  // namespace cohort::broker
