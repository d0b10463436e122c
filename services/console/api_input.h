#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::console {

// Checks on what a browser sends to the console's API, before anything reaches the
// broker or the scheduler. Every error is INVALID_ARGUMENT and quotes at most a short
// prefix of the input (common::QuoteBounded).

// A queue or schedule name: common::CheckName (libs/common/names.h), the rule and message
// the broker and scheduler apply, with `what` ("queue", "schedule") naming the field.
absl::Status CheckName(absl::string_view what, absl::string_view name);

// A job id as the broker makes them (common::ValidateJobId).
absl::Status CheckJobId(absl::string_view id);

// A bulk operation id as the broker makes them: [A-Za-z0-9._:-]{1,128}.
absl::Status CheckBulkId(absl::string_view id);

// A job filter from the query of GET /api/jobs: state (as ParseStates), queue, kind,
// labels (a label selector, at most 1 KiB), created_after, created_before,
// finished_after, finished_before (RFC 3339) and error_code; absent or empty keys
// leave that part of the filter empty. The broker checks the rest (the selector's
// grammar, for one) and names the field.
absl::StatusOr<cohort::v1::JobFilter> ParseJobFilter(const absl::flat_hash_map<std::string, std::string>& query);

// The body of POST /api/bulk: StartBulkOperationRequest in protobuf's JSON mapping,
// {"action": "BULK_ACTION_CANCEL", "filter": {...}, "dryRun": true, "matchAll": false,
// "requestId": "..."}. The action must be set, the filter's strings bounded as in
// ParseJobFilter and the request id at most 128 bytes; unknown keys are refused.
absl::StatusOr<cohort::v1::StartBulkOperationRequest> ParseBulkRequest(absl::string_view body);

// A comma-separated list of state names, case-insensitive, with or without the
// "JOB_STATE_" prefix ("failed,queued"); empty means any state.
absl::StatusOr<std::vector<cohort::v1::JobState>> ParseStates(absl::string_view text);

// An integer query parameter in [min, max]; `fallback` when absent or empty.
absl::StatusOr<std::int64_t> ParseIntParam(const absl::flat_hash_map<std::string, std::string>& query,
                                           absl::string_view key, std::int64_t min, std::int64_t max,
                                           std::int64_t fallback);

// The body of "set limits": a JSON object with any of maxConcurrency (0..1,000,000),
// maxRate (finite, 0..1e9 per second) and weight (0..1,000); other keys are rejected.
// The fields it sets are the ones the request changes (SetQueueLimits keeps the rest).
absl::StatusOr<cohort::v1::QueueLimits> ParseLimits(absl::string_view body);

}  // namespace cohort::console
