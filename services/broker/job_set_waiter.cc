#include "services/broker/job_set_waiter.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/common/quote.h"

namespace cohort::broker {

cohort::v1::JobOutcome OutcomeOf(const cohort::v1::Job& job) {
  cohort::v1::JobOutcome outcome;
  outcome.set_job_id(job.id());
  outcome.set_state(job.state());
  if (job.state() == cohort::v1::JOB_STATE_SUCCEEDED) {
    outcome.set_result(job.result());
  } else {
    *outcome.mutable_error() = job.error();
  }
  return outcome;
}

runtime::Task<absl::Status> JobSetWaiter::Watch(std::vector<std::string> ids) {
  absl::flat_hash_set<std::string> seen;
  std::vector<std::string> missing;
  for (const std::string& id : ids) {
    if (!seen.insert(id).second) continue;
    if (!engine_.HasJob(id)) {
      missing.push_back(id);
    } else {
      ids_.push_back(id);
    }
  }
  if (!missing.empty()) {
    co_return absl::NotFoundError(absl::StrCat("unknown job ids: ", common::QuoteListBounded(missing)));
  }
  // (end time, outcome) of the jobs already ended.
  std::vector<std::pair<std::pair<std::int64_t, std::int32_t>, cohort::v1::JobOutcome>> already;
  watching_ = true;
  for (const std::string& id : ids_) {
    Node& node = nodes_.emplace_back();
    node.owner = this;
    absl::StatusOr<std::optional<cohort::v1::Job>> ended = co_await engine_.WatchJob(id, &node);
    if (!ended.ok()) {
      watching_ = false;
      co_return ended.status();  // deleted meanwhile
    }
    if (const std::optional<cohort::v1::Job>& job = *ended; job.has_value()) {
      already.emplace_back(std::pair(job->end_time().seconds(), job->end_time().nanos()), OutcomeOf(*job));
    }
  }
  watching_ = false;
  // The order they ended in: by end time, ties in request order.
  std::stable_sort(already.begin(), already.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [end, outcome] : already) Record(std::move(outcome));
  for (cohort::v1::JobOutcome& outcome : std::exchange(held_, {})) Record(std::move(outcome));
  co_return absl::OkStatus();
}

void JobSetWaiter::Record(cohort::v1::JobOutcome outcome) {
  if (watching_) {
    held_.push_back(std::move(outcome));
    return;
  }
  ended_index_[outcome.job_id()] = ended_.size();
  ended_.push_back(std::move(outcome));
  changed_.Set();
}

bool JobSetWaiter::has_ended(const std::string& id) const { return outcome(id) != nullptr; }

const cohort::v1::JobOutcome* JobSetWaiter::outcome(const std::string& id) const {
  auto it = ended_index_.find(id);
  return it == ended_index_.end() ? nullptr : &ended_[it->second];
}

runtime::Task<bool> JobSetWaiter::WaitForMore(std::size_t seen, std::optional<runtime::TimePoint> deadline) {
  while (ended_.size() <= seen) {
    changed_.Clear();
    bool set = co_await changed_.WaitUntil(deadline.value_or(runtime::TimePoint::max()));
    if (!set) co_return ended_.size() > seen;
  }
  co_return true;
}

}  // namespace cohort::broker
