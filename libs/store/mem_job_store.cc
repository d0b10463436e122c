#include "libs/store/mem_job_store.h"

#include <algorithm>
#include <coroutine>
#include <utility>

#include "absl/strings/str_format.h"
#include "libs/runtime/check.h"
#include "libs/store/internal/keys.h"
#include "libs/store/internal/recovery.h"

namespace cohort::store {

using cohort::v1::Job;
using cohort::v1::JobEvent;
using runtime::Task;

struct MemJobStore::StagedCommit {
  const JobBatch* batch;
  std::coroutine_handle<> handle;
};

class MemJobStore::CommitAwaiter {
 public:
  CommitAwaiter(MemJobStore* store, const JobBatch* batch) : store_(store), commit_{batch, {}} {}

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    runtime::EventLoop* loop = runtime::EventLoop::Current();
    COHORT_CHECK(store_->loop_ == nullptr || store_->loop_ == loop, "MemJobStore used from two event loops");
    store_->loop_ = loop;
    commit_.handle = h;
    store_->Stage(&commit_);
  }
  void await_resume() const noexcept {}

 private:
  MemJobStore* const store_;
  StagedCommit commit_;
};

MemJobStore::MemJobStore(BatchLimits limits) : limits_(limits) {}

MemJobStore::~MemJobStore() { COHORT_CHECK(staged_.empty(), "MemJobStore destroyed with commits in flight"); }

Task<absl::Status> MemJobStore::Commit(JobBatch batch) {
  if (absl::Status s = batch.CheckCommittable(limits_); !s.ok()) co_return s;
  if (batch.empty()) co_return absl::OkStatus();
  co_await CommitAwaiter(this, &batch);
  co_return absl::OkStatus();
}

void MemJobStore::Stage(StagedCommit* commit) {
  staged_.push_back(commit);
  if (!flush_scheduled_) {
    flush_scheduled_ = true;
    loop_->CallSoon([this] { Flush(); });
  }
}

void MemJobStore::Flush() {
  flush_scheduled_ = false;
  std::vector<StagedCommit*> group = std::exchange(staged_, {});
  std::size_t records = 0;
  std::size_t bytes = 0;
  for (StagedCommit* commit : group) {
    Apply(*commit->batch);
    records += commit->batch->records();
    bytes += commit->batch->bytes();
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_.commits += group.size();
    stats_.syncs += 1;
    stats_.records += records;
    stats_.bytes += bytes;
  }
  for (StagedCommit* commit : group) loop_->Schedule(commit->handle);
}

void MemJobStore::Apply(const JobBatch& batch) {
  for (const JobBatch::Record& r : batch.record_list()) {
    if (r.erase) {
      family(r.family).erase(r.key);
    } else {
      family(r.family)[r.key] = r.value;
    }
  }
  last_event_sequence_ = std::max(last_event_sequence_, batch.max_event_sequence());
  if (batch.trim_events_before()) {
    // Keep the newest event, as RocksJobStore does.
    std::int64_t end = std::min(*batch.trim_events_before(), last_event_sequence_);
    FamilyMap& events = family(Family::kEvents);
    events.erase(events.begin(), events.lower_bound(internal::EventKey(end)));
  }
}

JobStoreStats MemJobStore::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

// Pages a copy of the jobs family taken when Recover ran: the snapshot.
class MemJobStore::MemJobRecovery final : public JobRecovery {
 public:
  MemJobRecovery(RecoveredState state, FamilyMap jobs, RecoverOptions options)
      : JobRecovery(std::move(state)), jobs_(std::move(jobs)), next_(jobs_.begin()), options_(options) {}

  Task<absl::StatusOr<std::vector<Job>>> NextJobs() override {
    internal::JobPageBuilder page(options_);
    for (; next_ != jobs_.end() && !page.full(); ++next_) {
      if (absl::Status s = page.Add(next_->first, next_->second); !s.ok()) co_return s;
    }
    co_return std::move(page).Finish();
  }

 private:
  const FamilyMap jobs_;
  FamilyMap::const_iterator next_;
  const RecoverOptions options_;
};

Task<absl::StatusOr<std::unique_ptr<JobRecovery>>> MemJobStore::Recover(RecoverOptions options) {
  internal::RecoveryBuilder builder;
  for (Family f : {Family::kReady, Family::kPending, Family::kMeta, Family::kBulkOperations}) {
    for (const auto& [key, value] : family(f)) {
      if (absl::Status s = builder.Add(f, key, value); !s.ok()) co_return s;
    }
  }
  if (!family(Family::kEvents).empty()) {
    if (absl::Status s = builder.SetLastEventKey(family(Family::kEvents).rbegin()->first); !s.ok()) co_return s;
  }
  co_return std::make_unique<MemJobRecovery>(std::move(builder).Finish(), family(Family::kJobs), options);
}

Task<absl::StatusOr<Job>> MemJobStore::GetJob(std::string id) {
  const FamilyMap& jobs = family(Family::kJobs);
  auto it = jobs.find(id);
  if (it == jobs.end()) co_return absl::NotFoundError(absl::StrFormat("job \"%s\" not found", id));
  co_return internal::ParseJob(it->first, it->second);
}

Task<absl::StatusOr<std::vector<JobEvent>>> MemJobStore::ReadEvents(std::int64_t from_sequence,
                                                                    std::size_t max_count,
                                                                    std::size_t max_bytes) {
  std::vector<JobEvent> events;
  std::size_t bytes = 0;
  const FamilyMap& log = family(Family::kEvents);
  for (auto it = log.lower_bound(internal::EventKey(from_sequence)); it != log.end() && events.size() < max_count;
       ++it) {
    bytes += it->second.size();
    if (!events.empty() && bytes > max_bytes) break;
    absl::StatusOr<JobEvent> event = internal::ParseEvent(it->first, it->second);
    if (!event.ok()) co_return event.status();
    events.push_back(*std::move(event));
  }
  co_return events;
}

}  // namespace cohort::store
