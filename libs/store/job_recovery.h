#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/runtime/task.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store {

// One entry of the ready index: a QUEUED job in its queue's dispatch order.
struct ReadyEntry {
  std::string queue;
  std::int32_t priority;
  std::int64_t sequence;  // Job.sequence when it was queued: FIFO within a priority
  std::string job_id;

  friend bool operator==(const ReadyEntry&, const ReadyEntry&) = default;
};

// One entry of the pending index: a PENDING job with a not_before time.
struct PendingEntry {
  absl::Time not_before;
  std::string job_id;

  friend bool operator==(const PendingEntry&, const PendingEntry&) = default;
};

// Everything but the jobs that a service needs to rebuild its in-memory state at start.
// Its size follows the live work (queued and pending jobs, meta, bulk records), not the
// retained finished jobs.
struct RecoveredState {
  // By queue name, then dispatch order: higher priority first, FIFO within a priority.
  std::vector<ReadyEntry> ready;
  std::vector<PendingEntry> pending;  // by not_before, then id
  std::int64_t last_event_sequence = 0;  // 0 if no event was ever stored
  std::map<std::string, std::string> meta;
  // Every stored bulk operation record (JobBatch::PutBulkOperation), by id.
  std::vector<cohort::v1::BulkOperation> bulk_operations;
};

// How JobRecovery::NextJobs pages the stored jobs. A page ends once it holds page_jobs
// jobs or page_bytes of stored (serialized) jobs, so it holds at most page_bytes plus
// one job; it always holds at least one job while any is left, whatever these say.
struct RecoverOptions {
  std::size_t page_jobs = 1'024;
  std::size_t page_bytes = 4 << 20;
};

// A read of a store's whole contents for a service's start-up (JobStore::Recover), from
// one consistent snapshot taken when Recover completed: the jobs and the index entries
// in state() agree, and writes made after it are not seen. Everything but the jobs is
// in state(), read at once; the jobs come in pages from NextJobs, so that a caller
// folding each page into its own structures holds one page of parsed jobs at a time,
// not every stored job (issue 14).
//
// Pages: NextJobs returns every job of the snapshot exactly once across its pages, in
// id order (the order of the store's keys), each page bounded by RecoverOptions; then
// an empty page, and empty pages on every later call. A store may read the next page
// while the caller works on the last one (RocksJobStore does), so a recovery holds at
// most two pages of its own. An error (DATA_LOSS for a job
// that does not parse, the store's error for a failed read) ends the recovery: the
// caller must not call NextJobs again.
//
// Threading: NextJobs is awaited from one loop, one call at a time; it may read on
// another thread and resumes on its caller's loop. state() belongs to that loop too.
// Ownership: holds the store's snapshot until destroyed, and must be destroyed before
// its store (before a replicated store's Stop).
//
//   absl::StatusOr<std::unique_ptr<JobRecovery>> recovery = co_await store.Recover({});
//   Use((*recovery)->state());
//   for (;;) {
//     absl::StatusOr<std::vector<cohort::v1::Job>> page = co_await (*recovery)->NextJobs();
//     if (!page.ok()) return page.status();
//     if (page->empty()) break;
//     for (cohort::v1::Job& job : *page) Keep(std::move(job));
//   }
class JobRecovery {
 public:
  virtual ~JobRecovery() = default;
  JobRecovery(const JobRecovery&) = delete;
  JobRecovery& operator=(const JobRecovery&) = delete;

  RecoveredState& state() { return state_; }
  virtual runtime::Task<absl::StatusOr<std::vector<cohort::v1::Job>>> NextJobs() = 0;

 protected:
  explicit JobRecovery(RecoveredState state) : state_(std::move(state)) {}

 private:
  RecoveredState state_;
};

}  // namespace cohort::store
