#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/scheduler.pb.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace cohort::scheduler {

// A schedule as stored, with its watermark: every slot at or before fired_through has
// fired or was passed over on purpose (paused, skipped by the overlap policy).
struct StoredSchedule {
  cohort::v1::Schedule schedule;
  absl::Time fired_through;
};

// The scheduler's own durable state: one record per schedule in a RocksDB directory.
// Every Put and Delete is synced to the write-ahead log before it returns, so after a
// kill -9 the store holds exactly what was acknowledged. Blocking: call it off the loop
// (runtime::ToThread). Thread-safe, as RocksDB is.
class ScheduleStore {
 public:
  // Opens (or creates) the store at `path`.
  static absl::StatusOr<std::unique_ptr<ScheduleStore>> Open(const std::string& path);
  ~ScheduleStore();
  ScheduleStore(const ScheduleStore&) = delete;
  ScheduleStore& operator=(const ScheduleStore&) = delete;

  // Every schedule, in id order.
  absl::StatusOr<std::vector<StoredSchedule>> LoadAll() const;
  // Writes the schedule and its watermark atomically.
  absl::Status Put(const StoredSchedule& stored);
  absl::Status Delete(const std::string& id);

 private:
  explicit ScheduleStore(std::unique_ptr<rocksdb::DB> db);

  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace cohort::scheduler
