#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/runtime/runtime.h"
#include "protos/cohort/v1/broker.pb.h"
#include "services/broker/broker_metrics.h"
#include "services/broker/job_filter.h"

namespace cohort::broker {

class BrokerEngine;

// What one batch of a bulk operation did (BrokerEngine::ApplyBulkStep), or one chunk
// of a count.
struct BulkStep {
  std::int64_t matched = 0;
  std::int64_t changed = 0;
  std::int64_t skipped = 0;
  std::string cursor;  // the last job id looked at; every job up to it is handled
  bool done = false;   // nothing is left in scope after `cursor`
};

// How bulk operations run. Each field is a flag of cohort-broker or a constant of it.
struct BulkOptions {
  // Records kept (--bulk-operations-kept): the oldest finished ones go beyond it.
  std::size_t kept = 100;
  // One batch (one commit) handles at most this many matching jobs...
  std::size_t batch_jobs = 256;
  // ...and looks at most at this many jobs, matching or not, before it yields.
  std::size_t scan_jobs = 4096;
};

// The bulk operations of broker.proto (StartBulkOperation, GetBulkOperation,
// ListBulkOperations): cancel, retry or delete every job a JobFilter matches.
//
// Guarantees:
// - Durable record: an operation is stored (store::JobBatch::PutBulkOperation) before
//   Start returns it, and every batch commits its jobs' changes together with the
//   updated record (counts and cursor_job_id), so the stored record always says
//   exactly which jobs were handled: those with ids up to its cursor.
// - Scope and order: jobs with ids in (cursor_job_id, last_job_id], in id order, each
//   handled once by the single-job rule (BrokerEngine's CancelInto, RetryInto,
//   CheckDeletable + Remove); a job the rule refuses counts as skipped, so matched =
//   changed + skipped at every commit. Jobs submitted after the start have larger ids
//   and are never touched.
// - Resumption: Recover (at the engine's start) resumes every RUNNING record from its
//   cursor, counting the restart in `resumed`.
// - Fairness: each operation runs as a task that yields to the loop between batches;
//   a batch looks at most at options.scan_jobs jobs and changes at most
//   options.batch_jobs, within the store's batch limits.
//
// Owned by the engine; loop thread only. Stop() cancels the running operations at
// their next suspension point (their stored records stay RUNNING, for the next start).
class BulkOperations {
 public:
  BulkOperations(BrokerEngine& engine, BrokerMetrics& metrics, BulkOptions options,
                 std::function<std::string()> new_id);
  ~BulkOperations();
  BulkOperations(const BulkOperations&) = delete;
  BulkOperations& operator=(const BulkOperations&) = delete;

  // The records the store held at start; RUNNING ones resume. Call once, from the
  // engine's Start, after the jobs are recovered.
  runtime::Task<void> Recover(std::vector<cohort::v1::BulkOperation> records);

  // StartBulkOperation: INVALID_ARGUMENT for an unspecified action, a malformed filter
  // (naming the field), an empty filter without match_all, or a request_id over 128
  // bytes; RESOURCE_EXHAUSTED (nothing written) while the engine refuses writes, except
  // for a dry run, which only counts. A known request_id returns its operation.
  runtime::Task<absl::StatusOr<cohort::v1::BulkOperation>> Start(cohort::v1::StartBulkOperationRequest request,
                                                                 std::string principal);
  absl::StatusOr<cohort::v1::BulkOperation> Get(const std::string& id) const;
  // Newest first.
  cohort::v1::ListBulkOperationsResponse List() const;

  runtime::Task<void> Stop();

  static constexpr std::size_t kMaxRequestIdBytes = 128;

 private:
  runtime::Task<void> Run(std::string id);
  // Counts the jobs the matcher accepts now, yielding between chunks of scan_jobs.
  runtime::Task<std::int64_t> CountMatching(JobMatcher matcher);
  // Stores the records of `put` and drops those of `erase`, durably.
  runtime::Task<void> Persist(std::vector<cohort::v1::BulkOperation> put, std::vector<std::string> erase);

  BrokerEngine& engine_;
  BrokerMetrics& metrics_;
  const BulkOptions options_;
  std::function<std::string()> new_id_;
  std::map<std::string, cohort::v1::BulkOperation> records_;     // by id: creation order
  absl::flat_hash_map<std::string, std::string> by_request_id_;  // request_id -> id
  runtime::TaskGroup runners_;
  bool stopping_ = false;
};

}  // namespace cohort::broker
