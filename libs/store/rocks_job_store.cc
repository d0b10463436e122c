#include "libs/store/rocks_job_store.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"
#include "libs/runtime/external_completion.h"
#include "libs/store/internal/keys.h"
#include "libs/store/internal/recovery.h"
#include "libs/store/internal/rocks_status.h"
#include "rocksdb/utilities/table_properties_collectors.h"

namespace cohort::store {

using cohort::v1::Job;
using cohort::v1::JobEvent;
using runtime::Task;

namespace {

// Column family names, in Family order.
constexpr const char* kFamilyNames[] = {"jobs", "ready", "pending", "events", "meta", "bulk_operations"};

rocksdb::ColumnFamilyOptions FamilyOptions(Family family) {
  rocksdb::ColumnFamilyOptions options;
  if (family == Family::kReady || family == Family::kPending || family == Family::kEvents) {
    // These families churn (every dispatch deletes a ready key, retention trims the
    // log): compact files dense with tombstones early so start-up scans stay fast.
    options.table_properties_collector_factories.push_back(
        rocksdb::NewCompactOnDeletionCollectorFactory(/*sliding_window_size=*/16384,
                                                      /*deletion_trigger=*/8192));
  }
  return options;
}

absl::string_view View(const rocksdb::Slice& slice) { return absl::string_view(slice.data(), slice.size()); }

}  // namespace

// A Commit waiting for the writer; lives in the awaiting coroutine's frame.
struct RocksJobStore::PendingCommit {
  const JobBatch* batch;
  runtime::Completer<absl::Status> done;
};

absl::StatusOr<std::unique_ptr<RocksJobStore>> RocksJobStore::Open(RocksJobStoreOptions options) {
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (int i = 0; i < kFamilies; ++i) {
    descriptors.emplace_back(kFamilyNames[i], FamilyOptions(static_cast<Family>(i)));
  }
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, descriptors, &handles, &raw);
  if (!s.ok()) return internal::FromRocks(s, absl::StrFormat("open \"%s\"", options.path));
  std::unique_ptr<rocksdb::DB> db(raw);

  // The newest event's sequence: JobBatch::TrimEventsBefore never deletes it.
  std::int64_t last_event_sequence = 0;
  {
    rocksdb::ReadOptions read_options;
    rocksdb::Slice upper(internal::AfterAllKeys());
    read_options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(read_options, handles[static_cast<int>(Family::kEvents)]));
    it->SeekToLast();
    if (it->Valid()) {
      absl::StatusOr<std::int64_t> sequence = internal::DecodeEventKey(View(it->key()));
      if (!sequence.ok()) return sequence.status();
      last_event_sequence = *sequence;
    }
    if (!it->status().ok()) return internal::FromRocks(it->status(), "read the last event");
  }
  return std::unique_ptr<RocksJobStore>(
      new RocksJobStore(std::move(options), std::move(db), std::move(handles), last_event_sequence));
}

RocksJobStore::RocksJobStore(RocksJobStoreOptions options, std::unique_ptr<rocksdb::DB> db,
                             std::vector<rocksdb::ColumnFamilyHandle*> handles,
                             std::int64_t last_event_sequence)
    : options_(std::move(options)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      last_event_sequence_(last_event_sequence),
      writer_([this] { WriterLoop(); }) {}

RocksJobStore::~RocksJobStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_writer_.notify_one();
  writer_.join();
  for (rocksdb::ColumnFamilyHandle* h : handles_) {
    db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();  // only fails for the default family
  }
  // Every acknowledged write is already in a synced WAL; a failing close loses nothing
  // and a destructor has no one to tell.
  db_->Close().PermitUncheckedError();
}

runtime::ThreadPool& RocksJobStore::read_pool() const {
  return options_.read_pool != nullptr ? *options_.read_pool : runtime::ThreadPool::Default();
}

// ---- Group commit --------------------------------------------------------------------

Task<absl::Status> RocksJobStore::Commit(JobBatch batch) {
  if (absl::Status s = batch.CheckCommittable(options_.limits); !s.ok()) co_return s;
  if (batch.empty()) co_return absl::OkStatus();
  std::optional<PendingCommit> commit;
  co_return co_await runtime::ExternalCompletion<absl::Status>([&](runtime::Completer<absl::Status> done) {
    commit.emplace(PendingCommit{&batch, done});
    Enqueue(&*commit);
  });
}

void RocksJobStore::Enqueue(PendingCommit* commit) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(commit);
  }
  wake_writer_.notify_one();
}

void RocksJobStore::WriterLoop() {
  std::vector<PendingCommit*> group;
  while (true) {
    group.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_writer_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and every queued commit is written
      std::size_t bytes = 0;
      do {
        bytes += queue_.front()->batch->bytes();
        group.push_back(queue_.front());
        queue_.pop_front();
      } while (!queue_.empty() && bytes + queue_.front()->batch->bytes() <= options_.max_group_bytes);
    }
    WriteGroup(group);
  }
}

void RocksJobStore::WriteGroup(const std::vector<PendingCommit*>& group) {
  rocksdb::WriteBatch write;
  absl::Status status;
  std::size_t records = 0;
  std::int64_t last_sequence = last_event_sequence_.load(std::memory_order_relaxed);
  std::optional<std::int64_t> trim_before;
  for (const PendingCommit* commit : group) {
    const JobBatch& batch = *commit->batch;
    for (const JobBatch::Record& r : batch.record_list()) {
      rocksdb::Status s = r.erase ? write.Delete(handle(r.family), r.key) : write.Put(handle(r.family), r.key, r.value);
      if (!s.ok() && status.ok()) status = internal::FromRocks(s, "stage a write");
    }
    records += batch.records();
    last_sequence = std::max(last_sequence, batch.max_event_sequence());
    if (batch.trim_events_before()) trim_before = std::max(trim_before.value_or(0), *batch.trim_events_before());
  }
  if (trim_before) {
    // Keep the newest event: its sequence is what a restart resumes from.
    std::int64_t end = std::min(*trim_before, last_sequence);
    if (end > 1) {  // sequences start at 1
      rocksdb::Status s = write.DeleteRange(handle(Family::kEvents), internal::EventKey(1), internal::EventKey(end));
      if (!s.ok() && status.ok()) status = internal::FromRocks(s, "stage an event trim");
    }
  }

  absl::Duration latency;
  if (status.ok()) {
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    absl::Time start = absl::Now();
    rocksdb::Status s = db_->Write(write_options, &write);
    latency = absl::Now() - start;
    status = internal::FromRocks(s, "synced write");
  }
  if (status.ok()) last_event_sequence_.store(last_sequence, std::memory_order_relaxed);

  const std::size_t bytes = write.GetDataSize();
  commits_.fetch_add(group.size(), std::memory_order_relaxed);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (status.ok()) {
    records_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    failed_syncs_.fetch_add(1, std::memory_order_relaxed);
  }
  sync_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
  if (options_.on_sync) options_.on_sync(SyncReport{group.size(), records, bytes, latency, status.ok()});

  // Each commit lives in its caller's frame, which may be gone as soon as it resumes.
  for (PendingCommit* commit : group) commit->done(status);
}

JobStoreStats RocksJobStore::stats() const {
  JobStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.failed_syncs = failed_syncs_.load(std::memory_order_relaxed);
  s.sync_time = absl::Nanoseconds(sync_nanos_.load(std::memory_order_relaxed));
  return s;
}

// ---- Reads ---------------------------------------------------------------------------

absl::Status RocksJobStore::ScanFamily(
    Family family, const rocksdb::Snapshot* snapshot,
    absl::FunctionRef<absl::Status(absl::string_view, absl::string_view)> fn) const {
  rocksdb::ReadOptions read_options;
  rocksdb::Slice upper(internal::AfterAllKeys());
  read_options.iterate_upper_bound = &upper;
  read_options.snapshot = snapshot;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handle(family)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (absl::Status s = fn(View(it->key()), View(it->value())); !s.ok()) return s;
  }
  return internal::FromRocks(it->status(), absl::StrFormat("scan %s", kFamilyNames[static_cast<int>(family)]));
}

absl::StatusOr<RecoveredState> RocksJobStore::RecoverNow() const {
  // One snapshot, so that the jobs and their index entries agree.
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  internal::RecoveryBuilder builder;
  absl::Status status;
  for (Family family : {Family::kJobs, Family::kReady, Family::kPending, Family::kMeta, Family::kBulkOperations}) {
    status = ScanFamily(family, snapshot, [&](absl::string_view key, absl::string_view value) {
      return builder.Add(family, key, value);
    });
    if (!status.ok()) break;
  }
  if (status.ok()) {
    rocksdb::ReadOptions read_options;
    rocksdb::Slice upper(internal::AfterAllKeys());
    read_options.iterate_upper_bound = &upper;
    read_options.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handle(Family::kEvents)));
    it->SeekToLast();
    if (it->Valid()) status = builder.SetLastEventKey(View(it->key()));
    if (status.ok()) status = internal::FromRocks(it->status(), "read the last event");
  }
  db_->ReleaseSnapshot(snapshot);
  if (!status.ok()) return status;
  return std::move(builder).Finish();
}

Task<absl::StatusOr<RecoveredState>> RocksJobStore::Recover() {
  co_return co_await runtime::ToThread(read_pool(), [this] { return RecoverNow(); });
}

Task<absl::StatusOr<Job>> RocksJobStore::GetJob(std::string id) {
  co_return co_await runtime::ToThread(read_pool(), [this, &id]() -> absl::StatusOr<Job> {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handle(Family::kJobs), id, &value);
    if (s.IsNotFound()) return absl::NotFoundError(absl::StrFormat("job \"%s\" not found", id));
    if (!s.ok()) return internal::FromRocks(s, absl::StrFormat("get job \"%s\"", id));
    return internal::ParseJob(id, value);
  });
}

Task<absl::StatusOr<std::vector<JobEvent>>> RocksJobStore::ReadEvents(std::int64_t from_sequence,
                                                                      std::size_t max_count,
                                                                      std::size_t max_bytes) {
  co_return co_await runtime::ToThread(
      read_pool(), [this, from_sequence, max_count, max_bytes]() -> absl::StatusOr<std::vector<JobEvent>> {
        std::vector<JobEvent> events;
        std::size_t bytes = 0;
        rocksdb::ReadOptions read_options;
        rocksdb::Slice upper(internal::AfterAllKeys());
        read_options.iterate_upper_bound = &upper;
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handle(Family::kEvents)));
        for (it->Seek(internal::EventKey(from_sequence)); it->Valid() && events.size() < max_count; it->Next()) {
          bytes += it->value().size();
          if (!events.empty() && bytes > max_bytes) break;
          absl::StatusOr<JobEvent> event = internal::ParseEvent(View(it->key()), View(it->value()));
          if (!event.ok()) return event.status();
          events.push_back(*std::move(event));
        }
        if (!it->status().ok()) return internal::FromRocks(it->status(), "read events");
        return events;
      });
}

}  // namespace cohort::store
