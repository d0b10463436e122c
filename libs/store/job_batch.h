#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "protos/cohort/v1/broker.pb.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::store {

// Caps on one JobBatch, enforced by JobStore::Commit (RESOURCE_EXHAUSTED beyond them,
// and nothing of the batch is written).
struct BatchLimits {
  // Key and value bytes of all records, index entries included.
  std::size_t max_bytes = 32 << 20;
  // Records: every key written or deleted, index entries included.
  std::size_t max_records = 100'000;
};

// The column families of the store (RocksDB) and of its fakes.
enum class Family { kJobs, kReady, kPending, kEvents, kMeta, kBulkOperations };

// One atomic unit of change for JobStore::Commit: typically one state transition
// (the job, its index entries and its event), or several for a Submit of many jobs.
// Either all of it becomes durable or none of it does.
//
// Each call encodes its records at once, so a batch owns copies of everything added
// and the caller's messages may change afterwards. Invalid input (an unprintable id,
// a PutJob whose `previous` is another job) is recorded in status(); Commit then
// rejects the whole batch with that status. Not thread-safe; movable.
//
//   JobBatch batch;
//   batch.PutJob(running, &queued);   // removes queued's ready entry
//   batch.AppendEvent(event);
//   absl::Status s = co_await store.Commit(std::move(batch));
class JobBatch {
 public:
  // A key to write, or to delete when `erase`.
  struct Record {
    Family family;
    bool erase;
    std::string key;
    std::string value;
  };

  // Stores `job` and moves its index entries: `previous` is the version stored now
  // (null for a new job), whose entries are removed unless `job` implies the same ones.
  // A job has a ready entry iff QUEUED (keyed by queue, priority and Job.sequence, the
  // sequence of the event that queued it: FIFO within a priority) and a pending entry
  // iff PENDING with not_before. Ids and, for QUEUED jobs, queue names must be 1-256
  // printable ASCII bytes.
  void PutJob(const cohort::v1::Job& job, const cohort::v1::Job* previous);
  // The same with `serialized` being job.SerializeAsString(), made by the caller (who
  // may reuse it, e.g. for the event) so that the job is not encoded twice. Stored as
  // given: the caller guarantees that it encodes `job`.
  void PutJob(const cohort::v1::Job& job, const cohort::v1::Job* previous, std::string serialized);
  // Deletes `job` (its currently stored version) and its index entries (retention).
  void DeleteJob(const cohort::v1::Job& job);
  // Appends event under event.sequence(), which must be positive; the broker assigns
  // increasing numbers.
  void AppendEvent(const cohort::v1::JobEvent& event);
  // The same for an event whose job is given encoded (`job`: a serialized Job) instead of
  // in event.job, which must be unset: stores the bytes event.SerializeAsString() would
  // give with event.job holding it, without parsing or copying the job (unless the event
  // has unknown fields, which a serializer writes after the job).
  void AppendEvent(const cohort::v1::JobEvent& event, absl::string_view job);
  // Makes room for `records` more records without reallocating (a Submit of many jobs).
  void Reserve(std::size_t records) { records_.reserve(records_.size() + records); }
  // Sets a meta value (e.g. the scheduler's cursor); key is 1-256 printable ASCII bytes.
  void PutMeta(absl::string_view key, absl::string_view value);
  // Deletes a meta value (e.g. a deleted queue's settings).
  void DeleteMeta(absl::string_view key);
  // Stores a bulk operation's record under op.id() (1-256 printable ASCII bytes),
  // replacing the one stored before: the broker writes it with each batch it applies,
  // so that the record and the jobs it counts change in one commit.
  void PutBulkOperation(const cohort::v1::BulkOperation& op);
  // Deletes the record of bulk operation `id` (the broker keeps only the latest ones).
  void DeleteBulkOperation(absl::string_view id);
  // Deletes every event with a sequence below `sequence` (retention), except that the
  // newest event is always kept so that the sequence survives restarts.
  void TrimEventsBefore(std::int64_t sequence);

  bool empty() const { return records_.empty() && !trim_events_before_; }
  std::size_t records() const { return records_.size() + (trim_events_before_ ? 1 : 0); }
  std::size_t bytes() const { return bytes_; }
  // The first invalid input added, or OK.
  const absl::Status& status() const { return status_; }
  // OK, or why Commit must refuse this batch: status(), or RESOURCE_EXHAUSTED when it
  // exceeds `limits`.
  absl::Status CheckCommittable(const BatchLimits& limits) const;

  // ---- For JobStore implementations -----------------------------------------------
  const std::vector<Record>& record_list() const { return records_; }
  // The highest event sequence appended, or 0.
  std::int64_t max_event_sequence() const { return max_event_sequence_; }
  std::optional<std::int64_t> trim_events_before() const { return trim_events_before_; }

 private:
  void Add(Family family, bool erase, std::string key, std::string value);
  void Fail(absl::Status status);

  std::vector<Record> records_;
  std::size_t bytes_ = 0;
  std::int64_t max_event_sequence_ = 0;
  std::optional<std::int64_t> trim_events_before_;
  absl::Status status_;
};

}  // namespace cohort::store
