#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "libs/runtime/event_loop.h"
#include "libs/store/job_store.h"

namespace cohort::store {

// An in-memory JobStore with RocksJobStore's semantics, for tests of the services
// that use a store: the same key order, indexes, limits and group commit. A "sync" is
// one loop iteration: every batch committed during an iteration is applied at once in
// the next one, and those Commits resume together. Nothing survives the object.
//
// Threading: one event loop only (checked on Commit); stats() from any thread.
// Ownership: must outlive every call in flight.
class MemJobStore final : public JobStore {
 public:
  explicit MemJobStore(BatchLimits limits = {});
  ~MemJobStore() override;
  MemJobStore(const MemJobStore&) = delete;
  MemJobStore& operator=(const MemJobStore&) = delete;

  // The JobRecovery pages a copy of the stored jobs (serialized) taken by Recover.
  runtime::Task<absl::StatusOr<std::unique_ptr<JobRecovery>>> Recover(RecoverOptions options) override;
  runtime::Task<absl::Status> Commit(JobBatch batch) override;
  runtime::Task<absl::StatusOr<cohort::v1::Job>> GetJob(std::string id) override;
  runtime::Task<absl::StatusOr<std::vector<cohort::v1::JobEvent>>> ReadEvents(
      std::int64_t from_sequence, std::size_t max_count, std::size_t max_bytes) override;
  JobStoreStats stats() const override;
  BatchLimits limits() const override { return limits_; }

 private:
  struct StagedCommit;
  class CommitAwaiter;
  class MemJobRecovery;
  using FamilyMap = std::map<std::string, std::string>;

  void Stage(StagedCommit* commit);
  void Flush();
  void Apply(const JobBatch& batch);
  FamilyMap& family(Family f) { return families_[static_cast<int>(f)]; }

  const BatchLimits limits_;
  std::array<FamilyMap, 6> families_;  // by Family
  std::int64_t last_event_sequence_ = 0;
  runtime::EventLoop* loop_ = nullptr;  // of the first Commit
  std::vector<StagedCommit*> staged_;
  bool flush_scheduled_ = false;

  mutable std::mutex stats_mu_;
  JobStoreStats stats_;  // guarded by stats_mu_
};

}  // namespace cohort::store
