#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/store/job_batch.h"
#include "libs/store/job_recovery.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store::internal {

// Stored values back into messages; a value that does not parse is DATA_LOSS.
absl::StatusOr<cohort::v1::Job> ParseJob(absl::string_view key, absl::string_view value);
absl::StatusOr<cohort::v1::JobEvent> ParseEvent(absl::string_view key, absl::string_view value);
absl::StatusOr<cohort::v1::BulkOperation> ParseBulkOperation(absl::string_view key, absl::string_view value);

// Builds a RecoveredState from a scan of the ready, pending, meta and bulk operation
// families in key order, so that every store decodes (and orders) its contents the same
// way. The jobs family is read by JobPageBuilder instead.
class RecoveryBuilder {
 public:
  absl::Status Add(Family family, absl::string_view key, absl::string_view value);
  // The key of the newest stored event, if any.
  absl::Status SetLastEventKey(absl::string_view key);
  RecoveredState Finish() && { return std::move(state_); }

 private:
  RecoveredState state_;
};

// Parses one page of JobRecovery::NextJobs from a scan of the jobs family, within
// RecoverOptions' bounds, so that every store pages the same way.
class JobPageBuilder {
 public:
  explicit JobPageBuilder(const RecoverOptions& options) : options_(options) {}
  // The page is complete: call Add only while this is false. Never true while empty.
  bool full() const {
    return !jobs_.empty() && (jobs_.size() >= options_.page_jobs || bytes_ >= options_.page_bytes);
  }
  absl::Status Add(absl::string_view key, absl::string_view value);
  std::vector<cohort::v1::Job> Finish() && { return std::move(jobs_); }

 private:
  const RecoverOptions options_;
  std::vector<cohort::v1::Job> jobs_;
  std::size_t bytes_ = 0;
};

}  // namespace cohort::store::internal
