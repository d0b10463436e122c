#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/store/job_batch.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store::internal {

// Stored values back into messages; a value that does not parse is DATA_LOSS.
absl::StatusOr<cohort::v1::Job> ParseJob(absl::string_view key, absl::string_view value);
absl::StatusOr<cohort::v1::JobEvent> ParseEvent(absl::string_view key, absl::string_view value);
absl::StatusOr<cohort::v1::BulkOperation> ParseBulkOperation(absl::string_view key, absl::string_view value);

// Builds a RecoveredState from a scan of the jobs, ready, pending, meta and bulk
// operation families
// in key order, so that every store decodes (and orders) its contents the same way.
class RecoveryBuilder {
 public:
  absl::Status Add(Family family, absl::string_view key, absl::string_view value);
  // The key of the newest stored event, if any.
  absl::Status SetLastEventKey(absl::string_view key);
  RecoveredState Finish() && { return std::move(state_); }

 private:
  RecoveredState state_;
};

}  // namespace cohort::store::internal
