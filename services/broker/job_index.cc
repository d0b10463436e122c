#include "services/broker/job_index.h"

#include <algorithm>
#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "libs/common/ids.h"
#include "libs/common/job_states.h"
#include "libs/common/proto_time.h"

namespace cohort::broker {
namespace {

// The smallest id made at Unix millisecond `ms` (clamped to the 48 bits ids have).
std::string FirstIdAt(std::int64_t ms) {
  constexpr std::int64_t kMaxMillis = (std::int64_t{1} << 48) - 1;
  ms = std::clamp<std::int64_t>(ms, 0, kMaxMillis);
  return absl::StrCat(absl::Hex(ms, absl::kZeroPad12), std::string(common::kJobIdLength - 12, '0'));
}

// How many milliseconds the job's id runs ahead of its create_time, when its id tells
// its create_time: the id's millisecond is at or after the create_time's (the id is
// made after the time is read) and at most kIdAhead later. Otherwise nullopt.
std::optional<std::int64_t> IdAheadMs(const cohort::v1::Job& job) {
  absl::StatusOr<common::JobIdParts> parts = common::ParseJobId(job.id());
  if (!parts.ok()) return std::nullopt;
  const std::int64_t ahead =
      absl::ToUnixMillis(parts->created) - absl::ToUnixMillis(common::FromProto(job.create_time()));
  if (ahead < 0 || ahead > absl::ToInt64Milliseconds(JobIndex::kIdAhead)) return std::nullopt;
  return ahead;
}

}  // namespace

std::size_t LabelBytes(const google::protobuf::Map<std::string, std::string>& labels) {
  std::size_t bytes = 0;
  for (const auto& [k, v] : labels) bytes += k.size() + v.size();
  return bytes;
}

std::pair<std::string, std::string> JobIndex::CreatedIdRange(const absl::Time* after,
                                                             const absl::Time* before) const {
  std::pair<std::string, std::string> range;
  // create_time >= after => id ms >= create ms >= after's ms (floored).
  if (after != nullptr) range.first = FirstIdAt(absl::ToUnixMillis(*after));
  // create_time < before => create ms <= before's ms => id ms <= that + the most ahead.
  if (before != nullptr) range.second = FirstIdAt(absl::ToUnixMillis(*before) + max_id_ahead_ms_ + 1);
  return range;
}

void JobIndex::Add(const cohort::v1::Job& job) {
  // A new job's id is the highest yet (a generator's ids increase): hinted at the end,
  // the insertion checks its neighbour instead of descending with string compares.
  IdSet& in_state = by_state_[static_cast<int>(job.state())];
  in_state.emplace_hint(in_state.end(), job.id());
  IdSet& in_queue = by_queue_[job.spec().queue()];
  in_queue.emplace_hint(in_queue.end(), job.id());
  IdSet& of_kind = by_kind_[job.spec().kind()];
  of_kind.emplace_hint(of_kind.end(), job.id());
  if (LabelBytes(job.spec().labels()) > kIndexedLabelBytes) {
    labels_unindexed_.emplace(job.id());
  } else {
    for (const auto& [k, v] : job.spec().labels()) by_label_[std::make_pair(k, v)].emplace(job.id());
  }
  if (std::optional<std::int64_t> ahead = IdAheadMs(job)) {
    max_id_ahead_ms_ = std::max(max_id_ahead_ms_, *ahead);
  } else {
    off_create_time_.emplace(job.id());
  }
  if (common::EndedWithError(job.state())) IndexError(job);
  // One recovered with its end time is summarized at once (EndedJobs has its end).
  if (common::IsTerminal(job.state()) && !job.has_end_time()) ended_maybe_live_.emplace(job.id());
}

void JobIndex::Move(const cohort::v1::Job& job, cohort::v1::JobState from) {
  if (from == job.state()) return;
  Erase(by_state_, static_cast<int>(from), job.id());
  by_state_[static_cast<int>(job.state())].emplace(job.id());
  if (common::EndedWithError(from)) UnindexError(job);
  if (common::EndedWithError(job.state())) IndexError(job);
  if (common::IsTerminal(job.state())) {
    ended_maybe_live_.emplace(job.id());
  } else if (common::IsTerminal(from)) {
    ended_maybe_live_.erase(job.id());
  }
}

void JobIndex::PruneEnded(std::size_t budget, absl::FunctionRef<bool(const std::string&)> live) const {
  auto it = ended_maybe_live_.upper_bound(prune_after_);
  for (; budget > 0 && !ended_maybe_live_.empty(); --budget) {
    if (it == ended_maybe_live_.end()) it = ended_maybe_live_.begin();
    prune_after_.assign(it->view());
    if (live(prune_after_)) {
      ++it;
    } else {
      it = ended_maybe_live_.erase(it);
    }
  }
}

void JobIndex::Remove(const cohort::v1::Job& job) {
  Erase(by_state_, static_cast<int>(job.state()), job.id());
  Erase(by_queue_, job.spec().queue(), job.id());
  Erase(by_kind_, job.spec().kind(), job.id());
  if (labels_unindexed_.erase(job.id()) == 0) {
    for (const auto& [k, v] : job.spec().labels()) Erase(by_label_, std::make_pair(k, v), job.id());
  }
  off_create_time_.erase(job.id());
  ended_maybe_live_.erase(job.id());
  if (common::EndedWithError(job.state())) UnindexError(job);
}

void JobIndex::IndexError(const cohort::v1::Job& job) { by_error_[job.error().code()].emplace(job.id()); }

void JobIndex::UnindexError(const cohort::v1::Job& job) {
  if (Erase(by_error_, job.error().code(), job.id())) return;
  // The error changed on the way out (e.g. a retry cleared it): find the id's set.
  for (auto it = by_error_.begin(); it != by_error_.end(); ++it) {
    if (it->second.erase(job.id()) == 0) continue;
    if (it->second.empty()) by_error_.erase(it);
    return;
  }
}

}  // namespace cohort::broker
