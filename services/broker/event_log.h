#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "libs/runtime/runtime.h"
#include "libs/store/job_store.h"
#include "protos/cohort/v1/broker.pb.h"

namespace cohort::broker {

// The broker's event log as the engine numbers it and Watch reads it. Every
// transition stages one event with the next sequence (Assign); once its commit is
// durable, the engine calls Committed and readers waiting for it wake up. Readers see
// committed events only, read from the store. Loop thread only; `store` must outlive
// it.
class EventLog {
 public:
  explicit EventLog(store::JobStore& store) : store_(store), commits_(std::make_unique<runtime::Event>()) {}

  // After recovery: the last sequence in the store.
  void Recovered(std::int64_t last) { assigned_ = committed_ = last; }
  // The sequence of the next event to stage.
  std::int64_t Assign() { return ++assigned_; }
  // Every event up to `sequence` is durable.
  void Committed(std::int64_t sequence);
  // The last durable sequence.
  std::int64_t committed() const { return committed_; }

  // Where a Watch may start: INVALID_ARGUMENT for a negative sequence, OUT_OF_RANGE
  // beyond the last committed one (the caller should list again).
  absl::Status CheckStart(std::int64_t after_sequence) const;

  // Reads committed events after a sequence, batch by batch, waiting for commits.
  // What it holds at a time is bounded: one read of at most kReadEvents events and
  // kBatchBytes of them (or a single larger event), returned as one batch.
  class Cursor {
   public:
    static constexpr std::size_t kReadEvents = 32;
    static constexpr std::size_t kBatchBytes = 64 << 10;

    // `after_sequence` must have passed CheckStart. 0 means "from the oldest retained".
    Cursor(EventLog& log, std::int64_t after_sequence)
        : log_(log), next_(after_sequence + 1), gap_allowed_(after_sequence == 0) {}
    // The next non-empty batch, once committed; FAILED_PRECONDITION if retention
    // deleted events after the start (list again), or the store's error. Cancellable.
    runtime::Task<absl::StatusOr<cohort::v1::WatchResponse>> Next();

   private:
    EventLog& log_;
    std::int64_t next_;
    bool gap_allowed_;
  };

 private:
  store::JobStore& store_;
  std::int64_t assigned_ = 0;
  std::int64_t committed_ = 0;
  std::unique_ptr<runtime::Event> commits_;  // set and cleared at each commit
};

}  // namespace cohort::broker
