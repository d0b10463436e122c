#include "services/console/api_input.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/ids.h"
#include "libs/common/names.h"
#include "libs/common/quote.h"

namespace cohort::console {
namespace {

constexpr std::int32_t kMaxConcurrency = 1'000'000;
constexpr double kMaxRate = 1e9;
constexpr std::int32_t kMaxWeight = 1'000;

constexpr std::size_t kMaxSelectorBytes = 1024;
constexpr std::size_t kMaxFieldBytes = 128;

absl::Status CheckBounded(absl::string_view what, absl::string_view value, std::size_t max) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", common::QuoteBounded(value), " is invalid: at most ", max, " bytes"));
}

// An RFC 3339 time ("2026-12-06T18:00:00Z") into `out`.
absl::Status ParseTimeParam(absl::string_view key, absl::string_view text, google::protobuf::Timestamp* out) {
  absl::Time time;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &time, &error) || time < absl::UnixEpoch() ||
      time > absl::FromUnixSeconds(253402300799)) {
    return absl::InvalidArgumentError(absl::StrCat(key, " ", common::QuoteBounded(text),
                                                   " is invalid: use an RFC 3339 time such as 2026-12-06T18:00:00Z"));
  }
  *out = google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
  return absl::OkStatus();
}

absl::Status CheckFilter(const cohort::v1::JobFilter& filter) {
  if (!filter.queue().empty()) {
    if (absl::Status s = CheckName("queue", filter.queue()); !s.ok()) return s;
  }
  if (absl::Status s = CheckBounded("kind", filter.kind(), kMaxFieldBytes); !s.ok()) return s;
  if (absl::Status s = CheckBounded("labels", filter.label_selector(), kMaxSelectorBytes); !s.ok()) return s;
  if (absl::Status s = CheckBounded("error_code", filter.error_code(), kMaxFieldBytes); !s.ok()) return s;
  if (filter.states_size() > 8) return absl::InvalidArgumentError("state lists at most 8 states");
  for (int state : filter.states()) {
    if (state == cohort::v1::JOB_STATE_UNSPECIFIED || !cohort::v1::JobState_IsValid(state)) {
      return absl::InvalidArgumentError(absl::StrCat("state ", state, " is invalid: use a JobState name"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckBulkId(absl::string_view id) {
  bool ok = !id.empty() && id.size() <= 128;
  for (char c : id) ok = ok && (absl::ascii_isalnum(c) || c == '.' || c == '_' || c == ':' || c == '-');
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("bulk operation id ", common::QuoteBounded(id), " is invalid: use [A-Za-z0-9._:-]{1,128}"));
}

absl::StatusOr<cohort::v1::JobFilter> ParseJobFilter(const absl::flat_hash_map<std::string, std::string>& query) {
  cohort::v1::JobFilter filter;
  auto get = [&](absl::string_view key) -> std::string {
    auto it = query.find(key);
    return it == query.end() ? "" : std::string(absl::StripAsciiWhitespace(it->second));
  };
  absl::StatusOr<std::vector<cohort::v1::JobState>> states = ParseStates(get("state"));
  if (!states.ok()) return states.status();
  for (cohort::v1::JobState state : *states) filter.add_states(state);
  filter.set_queue(get("queue"));
  filter.set_kind(get("kind"));
  filter.set_label_selector(get("labels"));
  filter.set_error_code(get("error_code"));
  const std::pair<const char*, google::protobuf::Timestamp* (cohort::v1::JobFilter::*)()> times[] = {
      {"created_after", &cohort::v1::JobFilter::mutable_created_after},
      {"created_before", &cohort::v1::JobFilter::mutable_created_before},
      {"finished_after", &cohort::v1::JobFilter::mutable_finished_after},
      {"finished_before", &cohort::v1::JobFilter::mutable_finished_before},
  };
  for (const auto& [key, field] : times) {
    if (const std::string text = get(key); !text.empty()) {
      if (absl::Status s = ParseTimeParam(key, text, (filter.*field)()); !s.ok()) return s;
    }
  }
  if (absl::Status s = CheckFilter(filter); !s.ok()) return s;
  return filter;
}

absl::StatusOr<cohort::v1::StartBulkOperationRequest> ParseBulkRequest(absl::string_view body) {
  cohort::v1::StartBulkOperationRequest request;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), &request, options).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bulk body ", common::QuoteBounded(body),
        " is invalid: send a JSON object with action (BULK_ACTION_CANCEL, _RETRY or _DELETE), filter, dryRun, "
        "matchAll"));
  }
  if (request.action() == cohort::v1::BULK_ACTION_UNSPECIFIED || !cohort::v1::BulkAction_IsValid(request.action())) {
    return absl::InvalidArgumentError("bulk action is missing: use BULK_ACTION_CANCEL, _RETRY or _DELETE");
  }
  if (absl::Status s = CheckFilter(request.filter()); !s.ok()) return s;
  if (absl::Status s = CheckBounded("requestId", request.request_id(), kMaxFieldBytes); !s.ok()) return s;
  return request;
}

absl::Status CheckName(absl::string_view what, absl::string_view name) {
  return common::CheckName(name, absl::StrCat(what, " "));
}

absl::Status CheckJobId(absl::string_view id) {
  if (common::ValidateJobId(id).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("job id ", common::QuoteBounded(id), " is invalid: a job id is 24 lowercase hex digits"));
}

absl::StatusOr<std::vector<cohort::v1::JobState>> ParseStates(absl::string_view text) {
  std::vector<cohort::v1::JobState> states;
  if (text.empty()) return states;
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() > 8) return absl::InvalidArgumentError("state lists at most 8 states");
  for (absl::string_view part : parts) {
    std::string name = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(part));
    if (name.rfind("JOB_STATE_", 0) != 0) name = absl::StrCat("JOB_STATE_", name);
    cohort::v1::JobState state;
    if (!cohort::v1::JobState_Parse(name, &state) || state == cohort::v1::JOB_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state ", common::QuoteBounded(part),
          " is invalid: use pending, queued, running, succeeded, failed or cancelled"));
    }
    states.push_back(state);
  }
  return states;
}

absl::StatusOr<std::int64_t> ParseIntParam(const absl::flat_hash_map<std::string, std::string>& query,
                                           absl::string_view key, std::int64_t min, std::int64_t max,
                                           std::int64_t fallback) {
  auto it = query.find(key);
  if (it == query.end() || it->second.empty()) return fallback;
  std::int64_t value = 0;
  if (!absl::SimpleAtoi(it->second, &value) || value < min || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(key, " ", common::QuoteBounded(it->second),
                                                   " is invalid: use an integer in ", min, "..", max));
  }
  return value;
}

absl::StatusOr<cohort::v1::QueueLimits> ParseLimits(absl::string_view body) {
  cohort::v1::QueueLimits limits;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  if (!google::protobuf::util::JsonStringToMessage(std::string(body), &limits, options).ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "limits body ", common::QuoteBounded(body),
        " is invalid: send a JSON object with maxConcurrency, maxRate and/or weight"));
  }
  if (!limits.has_max_concurrency() && !limits.has_max_rate() && !limits.has_weight()) {
    return absl::InvalidArgumentError("limits body sets nothing: give maxConcurrency, maxRate and/or weight");
  }
  if (limits.has_max_concurrency() && (limits.max_concurrency() < 0 || limits.max_concurrency() > kMaxConcurrency)) {
    return absl::InvalidArgumentError(
        absl::StrCat("maxConcurrency ", limits.max_concurrency(), " is invalid: use 0..", kMaxConcurrency,
                     " (0: unlimited)"));
  }
  if (limits.has_max_rate() &&
      (!std::isfinite(limits.max_rate()) || limits.max_rate() < 0 || limits.max_rate() > kMaxRate)) {
    return absl::InvalidArgumentError("maxRate is invalid: use a number of dispatches per second in 0..1e9 "
                                      "(0: unlimited)");
  }
  if (limits.has_weight() && (limits.weight() < 0 || limits.weight() > kMaxWeight)) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight ", limits.weight(), " is invalid: use 0..", kMaxWeight, " (0: the default, 1)"));
  }
  return limits;
}

}  // namespace cohort::console
