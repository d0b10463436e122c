#include "services/broker/job_set_waiter.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "libs/common/quote.h"

namespace cohort::broker {

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
  std::vector<cohort::v1::Job> already;
  watching_ = true;
  for (const std::string& id : ids_) {
    Node& node = nodes_.emplace_back();
    node.owner = this;
    absl::StatusOr<std::optional<cohort::v1::Job>> ended = co_await engine_.WatchJob(id, &node);
    if (!ended.ok()) {
      watching_ = false;
      co_return ended.status();  // deleted meanwhile
    }
    if (ended->has_value()) already.push_back(**std::move(ended));
  }
  watching_ = false;
  // The order they ended in: by end time, ties in request order.
  std::stable_sort(already.begin(), already.end(), [](const cohort::v1::Job& a, const cohort::v1::Job& b) {
    return std::pair(a.end_time().seconds(), a.end_time().nanos()) <
           std::pair(b.end_time().seconds(), b.end_time().nanos());
  });
  for (const cohort::v1::Job& job : already) Record(job);
  for (const cohort::v1::Job& job : std::exchange(held_, {})) Record(job);
  co_return absl::OkStatus();
}

void JobSetWaiter::Record(const cohort::v1::Job& job) {
  if (watching_) {
    held_.push_back(job);
    return;
  }
  ended_index_[job.id()] = ended_.size();
  ended_.push_back(job);
  changed_.Set();
}

bool JobSetWaiter::has_ended(const std::string& id) const { return job(id) != nullptr; }

const cohort::v1::Job* JobSetWaiter::job(const std::string& id) const {
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
