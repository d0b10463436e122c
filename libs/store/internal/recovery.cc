#include "libs/store/internal/recovery.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "libs/store/internal/keys.h"

namespace cohort::store::internal {

absl::StatusOr<cohort::v1::Job> ParseJob(absl::string_view key, absl::string_view value) {
  cohort::v1::Job job;
  if (!job.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrFormat("stored job \"%s\" does not parse: the store is corrupt", absl::CHexEscape(key)));
  }
  return job;
}

absl::StatusOr<cohort::v1::JobEvent> ParseEvent(absl::string_view key, absl::string_view value) {
  cohort::v1::JobEvent event;
  if (!event.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrFormat("stored event %s does not parse: the store is corrupt", absl::CHexEscape(key)));
  }
  return event;
}

absl::StatusOr<cohort::v1::BulkOperation> ParseBulkOperation(absl::string_view key, absl::string_view value) {
  cohort::v1::BulkOperation op;
  if (!op.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(absl::StrFormat("stored bulk operation \"%s\" does not parse: the store is corrupt",
                                               absl::CHexEscape(key)));
  }
  return op;
}

absl::Status RecoveryBuilder::Add(Family family, absl::string_view key, absl::string_view value) {
  switch (family) {
    case Family::kJobs:
      return absl::InternalError("the jobs family is read page by page (JobPageBuilder)");
    case Family::kReady: {
      absl::StatusOr<DecodedReadyKey> k = DecodeReadyKey(key);
      if (!k.ok()) return k.status();
      state_.ready.push_back(ReadyEntry{std::move(k->queue), k->priority, k->sequence, std::move(k->job_id)});
      return absl::OkStatus();
    }
    case Family::kPending: {
      absl::StatusOr<DecodedPendingKey> k = DecodePendingKey(key);
      if (!k.ok()) return k.status();
      state_.pending.push_back(PendingEntry{k->not_before, std::move(k->job_id)});
      return absl::OkStatus();
    }
    case Family::kMeta:
      state_.meta.emplace(std::string(key), std::string(value));
      return absl::OkStatus();
    case Family::kEvents:
      return SetLastEventKey(key);
    case Family::kBulkOperations: {
      absl::StatusOr<cohort::v1::BulkOperation> op = ParseBulkOperation(key, value);
      if (!op.ok()) return op.status();
      state_.bulk_operations.push_back(*std::move(op));
      return absl::OkStatus();
    }
  }
  return absl::InternalError("unknown column family");
}

absl::Status JobPageBuilder::Add(absl::string_view key, absl::string_view value) {
  absl::StatusOr<cohort::v1::Job> job = ParseJob(key, value);
  if (!job.ok()) return job.status();
  jobs_.push_back(*std::move(job));
  bytes_ += value.size();
  return absl::OkStatus();
}

absl::Status RecoveryBuilder::SetLastEventKey(absl::string_view key) {
  absl::StatusOr<std::int64_t> sequence = DecodeEventKey(key);
  if (!sequence.ok()) return sequence.status();
  state_.last_event_sequence = std::max(state_.last_event_sequence, *sequence);
  return absl::OkStatus();
}

}  // namespace cohort::store::internal
