#include "services/console/api_input.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "libs/common/ids.h"
#include "libs/common/quote.h"

namespace cohort::console {
namespace {

constexpr std::int32_t kMaxConcurrency = 1'000'000;
constexpr double kMaxRate = 1e9;
constexpr std::int32_t kMaxWeight = 1'000;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

}  // namespace

absl::Status CheckName(absl::string_view what, absl::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) ok = ok && IsNameChar(c);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " ", common::QuoteBounded(name), " is invalid: use [a-z0-9._-]{1,64}"));
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
