#include "services/broker/job_filter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "libs/common/job_states.h"
#include "libs/common/names.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"

namespace cohort::broker {
namespace {

using cohort::v1::JobState;

absl::Status CheckState(int s, absl::string_view field) {
  if (!cohort::v1::JobState_IsValid(s) || s == cohort::v1::JOB_STATE_UNSPECIFIED) {
    return absl::InvalidArgumentError(absl::StrCat(field, " contains ", s, ", which is not a job state"));
  }
  return absl::OkStatus();
}

// A half-open range [after, before) from two optional timestamps.
absl::Status CheckRange(bool has_after, const google::protobuf::Timestamp& after, bool has_before,
                        const google::protobuf::Timestamp& before, absl::string_view field, absl::string_view name,
                        std::optional<absl::Time>& out_after, std::optional<absl::Time>& out_before) {
  const std::string after_field = absl::StrCat(field, ".", name, "_after");
  const std::string before_field = absl::StrCat(field, ".", name, "_before");
  if (has_after) {
    absl::StatusOr<absl::Time> t = common::TimeFromWire(after, after_field);
    if (!t.ok()) return t.status();
    out_after = *t;
  }
  if (has_before) {
    absl::StatusOr<absl::Time> t = common::TimeFromWire(before, before_field);
    if (!t.ok()) return t.status();
    out_before = *t;
  }
  if (out_after && out_before && *out_after >= *out_before) {
    return absl::InvalidArgumentError(
        absl::StrCat(after_field, " must be earlier than ", before_field, ": the range [after, before) is empty"));
  }
  return absl::OkStatus();
}

bool InRange(const google::protobuf::Timestamp& t, const std::optional<absl::Time>& after,
             const std::optional<absl::Time>& before) {
  const absl::Time time = common::FromProto(t);
  return (!after || time >= *after) && (!before || time < *before);
}

}  // namespace

absl::StatusOr<JobMatcher> JobMatcher::Compile(const cohort::v1::JobFilter& filter, absl::string_view field) {
  JobMatcher m;
  const std::string states_field = absl::StrCat(field, ".states");
  for (int s : filter.states()) {
    if (absl::Status st = CheckState(s, states_field); !st.ok()) return st;
    m.states_.push_back(static_cast<JobState>(s));
  }
  std::sort(m.states_.begin(), m.states_.end());
  m.states_.erase(std::unique(m.states_.begin(), m.states_.end()), m.states_.end());
  if (!filter.queue().empty()) {
    if (absl::Status s = common::CheckName(filter.queue(), absl::StrCat(field, ".queue ")); !s.ok()) return s;
    m.queue_ = filter.queue();
  }
  if (!filter.kind().empty()) {
    if (absl::Status s = common::CheckName(filter.kind(), absl::StrCat(field, ".kind ")); !s.ok()) return s;
    m.kind_ = filter.kind();
  }
  absl::StatusOr<LabelSelector> labels = LabelSelector::Parse(filter.label_selector(), absl::StrCat(field, ".label_selector"));
  if (!labels.ok()) return labels.status();
  m.labels_ = *std::move(labels);
  if (absl::Status s = CheckRange(filter.has_created_after(), filter.created_after(), filter.has_created_before(),
                                  filter.created_before(), field, "created", m.created_after_, m.created_before_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRange(filter.has_finished_after(), filter.finished_after(), filter.has_finished_before(),
                                  filter.finished_before(), field, "finished", m.finished_after_, m.finished_before_);
      !s.ok()) {
    return s;
  }
  if (filter.error_code().size() > kMaxErrorCodeBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".error_code ", common::QuoteBounded(filter.error_code()),
                                                   " is ", filter.error_code().size(), " bytes: the limit is ",
                                                   kMaxErrorCodeBytes));
  }
  m.error_code_ = filter.error_code();
  return m;
}

void JobMatcher::RestrictQueue(const std::string& queue) {
  if (queue.empty()) return;
  if (!queue_.empty() && queue_ != queue) nothing_ = true;
  queue_ = queue;
}

void JobMatcher::RestrictStates(const std::vector<JobState>& states) {
  if (states.empty()) return;
  std::vector<JobState> sorted = states;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  if (states_.empty()) {
    states_ = std::move(sorted);
    return;
  }
  std::vector<JobState> both;
  std::set_intersection(states_.begin(), states_.end(), sorted.begin(), sorted.end(), std::back_inserter(both));
  if (both.empty()) nothing_ = true;
  states_ = std::move(both);
}

bool JobMatcher::matches_all() const {
  return !nothing_ && states_.empty() && queue_.empty() && kind_.empty() && labels_.empty() && !created_after_ &&
         !created_before_ && !finished_after_ && !finished_before_ && error_code_.empty();
}

bool JobMatcher::Matches(const cohort::v1::Job& job) const {
  if (nothing_) return false;
  if (!states_.empty() && !std::binary_search(states_.begin(), states_.end(), job.state())) return false;
  if (!queue_.empty() && job.spec().queue() != queue_) return false;
  if (!kind_.empty() && job.spec().kind() != kind_) return false;
  if ((created_after_ || created_before_) && !InRange(job.create_time(), created_after_, created_before_)) {
    return false;
  }
  if (finished_after_ || finished_before_) {
    if (!job.has_end_time() || !InRange(job.end_time(), finished_after_, finished_before_)) return false;
  }
  if (!error_code_.empty()) {
    if (!common::EndedWithError(job.state()) || job.error().code() != error_code_) return false;
  }
  return labels_.Matches(job.spec().labels());
}

}  // namespace cohort::broker
