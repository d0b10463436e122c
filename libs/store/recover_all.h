#pragma once

#include <memory>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "libs/runtime/task.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store {

// For tests: a whole JobRecovery read into memory, every page of jobs included.
struct RecoveredStore : RecoveredState {
  std::vector<cohort::v1::Job> jobs;  // every stored job, by id
};

// Recovers `store` and reads every page of its jobs (O(stored jobs) in memory: a test's
// view of the whole store, never a service's). The store's error if any read fails.
inline runtime::Task<absl::StatusOr<RecoveredStore>> RecoverAll(JobStore& store, RecoverOptions options = {}) {
  absl::StatusOr<std::unique_ptr<JobRecovery>> recovery = co_await store.Recover(options);
  if (!recovery.ok()) co_return recovery.status();
  RecoveredStore whole;
  static_cast<RecoveredState&>(whole) = std::move((*recovery)->state());
  for (;;) {
    absl::StatusOr<std::vector<cohort::v1::Job>> page = co_await (*recovery)->NextJobs();
    if (!page.ok()) co_return page.status();
    if (page->empty()) co_return whole;
    for (cohort::v1::Job& job : *page) whole.jobs.push_back(std::move(job));
  }
}

}  // namespace cohort::store
