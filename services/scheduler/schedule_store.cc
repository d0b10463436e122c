#include "services/scheduler/schedule_store.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"

namespace cohort::scheduler {
namespace {

// "schedule/<id>" holds the Schedule, "fired/<id>" its watermark in Unix nanoseconds.
constexpr char kPrefix[] = "schedule/";
constexpr char kFiredPrefix[] = "fired/";

absl::Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", s.ToString()));
}

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions options;
  options.sync = true;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScheduleStore>> ScheduleStore::Open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return absl::UnavailableError(absl::StrCat("cannot open schedule store ", path, ": ", s.ToString()));
  return std::unique_ptr<ScheduleStore>(new ScheduleStore(std::unique_ptr<rocksdb::DB>(raw)));
}

ScheduleStore::ScheduleStore(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

ScheduleStore::~ScheduleStore() = default;

absl::StatusOr<std::vector<StoredSchedule>> ScheduleStore::LoadAll() const {
  std::vector<StoredSchedule> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(kPrefix); it->Valid() && it->key().starts_with(kPrefix); it->Next()) {
    cohort::v1::Schedule schedule;
    if (!schedule.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError(absl::StrCat("schedule record ", it->key().ToString(), " does not parse"));
    }
    std::string fired;
    rocksdb::Status got = db_->Get(rocksdb::ReadOptions(), absl::StrCat(kFiredPrefix, schedule.id()), &fired);
    int64_t nanos = 0;
    if (!got.ok() || !absl::SimpleAtoi(fired, &nanos)) {
      return absl::DataLossError(absl::StrCat("schedule ", schedule.id(), " has no readable watermark"));
    }
    out.push_back({std::move(schedule), absl::FromUnixNanos(nanos)});
  }
  if (absl::Status s = FromRocks(it->status(), "reading schedules"); !s.ok()) return s;
  return out;
}

absl::Status ScheduleStore::Put(const StoredSchedule& stored) {
  const std::string& id = stored.schedule.id();
  rocksdb::WriteBatch batch;
  batch.Put(absl::StrCat(kPrefix, id), stored.schedule.SerializeAsString());
  batch.Put(absl::StrCat(kFiredPrefix, id), absl::StrCat(absl::ToUnixNanos(stored.fired_through)));
  return FromRocks(db_->Write(Synced(), &batch), absl::StrCat("writing schedule ", id));
}

absl::Status ScheduleStore::Delete(const std::string& id) {
  rocksdb::WriteBatch batch;
  batch.Delete(absl::StrCat(kPrefix, id));
  batch.Delete(absl::StrCat(kFiredPrefix, id));
  return FromRocks(db_->Write(Synced(), &batch), absl::StrCat("deleting schedule ", id));
}

}  // namespace cohort::scheduler
