#include "libs/store/rocks_job_store.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
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
rocksdb::Slice ToSlice(absl::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

// Replicated mode: the applied log index, in RocksDB's default family (8 bytes,
// big-endian), next to nothing else.
constexpr char kAppliedIndexKey[] = "applied_index";

std::string EncodeU64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (56 - 8 * i)) & 0xff);
  return out;
}

std::uint64_t DecodeU64(absl::string_view in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// Export's format, version 1: the version byte, the record count (8 bytes), then each
// record as its family (1 byte: Family, or kFamilies for the default family), the key's
// length (4 bytes), the key, the value's length (4 bytes) and the value; nothing after.
// Integers are big-endian.
constexpr char kExportVersion = 1;
constexpr std::size_t kExportHeader = 9;
constexpr std::size_t kExportRecordHeader = 9;

void AppendU32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::uint32_t DecodeU32(absl::string_view in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

absl::Status MalformedExport(absl::string_view why) {
  return absl::DataLossError(absl::StrFormat("malformed store export: %s", why));
}

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
  db_options.db_write_buffer_size = options.max_write_buffer_bytes;

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
  std::uint64_t applied_index = 0;
  {
    std::string value;
    s = db->Get(rocksdb::ReadOptions(), handles[kFamilies], kAppliedIndexKey, &value);
    if (s.ok() && value.size() != 8) {
      return absl::DataLossError(absl::StrFormat("\"%s\": the applied index is not 8 bytes", options.path));
    }
    if (s.ok()) {
      applied_index = DecodeU64(value);
    } else if (!s.IsNotFound()) {
      return internal::FromRocks(s, "read the applied index");
    }
  }
  return std::unique_ptr<RocksJobStore>(new RocksJobStore(std::move(options), std::move(db), std::move(handles),
                                                          last_event_sequence, applied_index));
}

RocksJobStore::RocksJobStore(RocksJobStoreOptions options, std::unique_ptr<rocksdb::DB> db,
                             std::vector<rocksdb::ColumnFamilyHandle*> handles,
                             std::int64_t last_event_sequence, std::uint64_t applied_index)
    : options_(std::move(options)),
      db_(std::move(db)),
      handles_(std::move(handles)),
      last_event_sequence_(last_event_sequence),
      applied_index_(applied_index),
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
    if (TryBeginInline()) {
      absl::Status status = WriteBatches({&batch});
      EndInline();
      inline_commits_.fetch_add(1, std::memory_order_relaxed);
      // From the loop's own thread: the task resumes on the loop's next turn, never
      // inside the caller's step (which may hold references that the resumed code
      // invalidates).
      done(std::move(status));
      return;
    }
    commit.emplace(PendingCommit{&batch, done});
    Enqueue(&*commit);
  });
}

bool RocksJobStore::TryBeginInline() {
  if (!options_.inline_commits) return false;
  const runtime::EventLoop* loop = runtime::EventLoop::Current();
  // Something else is ready to run: let the writer sync while the loop runs it.
  if (loop == nullptr || loop->OthersReady() || loop->PostsWaiting()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  // A write in flight or queued: this one must come after it. The writer's last
  // completion of a group is posted before writer_busy_ drops, so an earlier commit
  // of this loop has resumed by now (PostsWaiting() was false).
  if (writer_busy_ || inline_busy_ || !queue_.empty() || stopping_) return false;
  inline_busy_ = true;
  return true;
}

void RocksJobStore::EndInline() {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    inline_busy_ = false;
    // Commits from other loops came meanwhile (or the store is closing): the writer
    // waits for them. Otherwise it sleeps on, without a wake-up per inline commit.
    wake = !queue_.empty() || stopping_;
  }
  if (wake) wake_writer_.notify_one();
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
  std::vector<const JobBatch*> batches;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    writer_busy_ = false;
    // An inline write in progress goes first: it began before these were queued.
    wake_writer_.wait(lock, [&] { return (stopping_ || !queue_.empty()) && !inline_busy_; });
    if (queue_.empty()) return;  // stopping, and every queued commit is written
    writer_busy_ = true;
    group.clear();
    batches.clear();
    std::size_t bytes = 0;
    do {
      bytes += queue_.front()->batch->bytes();
      group.push_back(queue_.front());
      batches.push_back(queue_.front()->batch);
      queue_.pop_front();
    } while (!queue_.empty() && bytes + queue_.front()->batch->bytes() <= options_.max_group_bytes);
    lock.unlock();
    absl::Status status = WriteBatches(batches);
    // Each commit lives in its caller's frame, which may be gone as soon as it resumes.
    for (PendingCommit* commit : group) commit->done(status);
    lock.lock();
  }
}

template <typename Record>
absl::Status RocksJobStore::StageRecords(const std::vector<Record>& records, rocksdb::WriteBatch& write) const {
  for (const Record& r : records) {
    rocksdb::Status s = r.erase ? write.Delete(handle(r.family), ToSlice(r.key))
                                : write.Put(handle(r.family), ToSlice(r.key), ToSlice(r.value));
    if (!s.ok()) return internal::FromRocks(s, "stage a write");
  }
  return absl::OkStatus();
}

absl::Status RocksJobStore::StageTrim(std::int64_t trim_before, std::int64_t last_sequence,
                                      rocksdb::WriteBatch& write) const {
  // Keep the newest event: its sequence is what a restart resumes from.
  std::int64_t end = std::min(trim_before, last_sequence);
  if (end <= 1) return absl::OkStatus();  // sequences start at 1
  rocksdb::Status s = write.DeleteRange(handle(Family::kEvents), internal::EventKey(1), internal::EventKey(end));
  return internal::FromRocks(s, "stage an event trim");
}

absl::Status RocksJobStore::WriteBatches(const std::vector<const JobBatch*>& batches) {
  rocksdb::WriteBatch write;
  absl::Status status;
  std::size_t records = 0;
  std::unique_lock<std::mutex> write_lock(write_mu_);
  std::int64_t last_sequence = last_event_sequence_.load(std::memory_order_relaxed);
  std::optional<std::int64_t> trim_before;
  for (const JobBatch* b : batches) {
    const JobBatch& batch = *b;
    if (absl::Status s = StageRecords(batch.record_list(), write); !s.ok() && status.ok()) status = s;
    records += batch.records();
    last_sequence = std::max(last_sequence, batch.max_event_sequence());
    if (batch.trim_events_before()) trim_before = std::max(trim_before.value_or(0), *batch.trim_events_before());
  }
  if (trim_before) {
    if (absl::Status s = StageTrim(*trim_before, last_sequence, write); !s.ok() && status.ok()) status = s;
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
  write_lock.unlock();

  const std::size_t bytes = write.GetDataSize();
  commits_.fetch_add(batches.size(), std::memory_order_relaxed);
  syncs_.fetch_add(1, std::memory_order_relaxed);
  if (status.ok()) {
    records_.fetch_add(records, std::memory_order_relaxed);
    bytes_.fetch_add(bytes, std::memory_order_relaxed);
  } else {
    failed_syncs_.fetch_add(1, std::memory_order_relaxed);
  }
  sync_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency), std::memory_order_relaxed);
  if (options_.on_sync) options_.on_sync(SyncReport{batches.size(), records, bytes, latency, status.ok()});
  return status;
}

JobStoreStats RocksJobStore::stats() const {
  JobStoreStats s;
  s.commits = commits_.load(std::memory_order_relaxed);
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.records = records_.load(std::memory_order_relaxed);
  s.bytes = bytes_.load(std::memory_order_relaxed);
  s.failed_syncs = failed_syncs_.load(std::memory_order_relaxed);
  s.inline_commits = inline_commits_.load(std::memory_order_relaxed);
  s.sync_time = absl::Nanoseconds(sync_nanos_.load(std::memory_order_relaxed));
  return s;
}

// ---- Replicated mode -----------------------------------------------------------------

absl::Status RocksJobStore::ApplyReplicated(const ReplicatedBatch& batch, std::uint64_t index) {
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (index <= applied_index_.load(std::memory_order_relaxed)) return absl::OkStatus();
  rocksdb::WriteBatch write;
  std::int64_t last_sequence =
      std::max(last_event_sequence_.load(std::memory_order_relaxed), batch.max_event_sequence);
  if (absl::Status s = StageRecords(batch.records, write); !s.ok()) return s;
  if (batch.trim_events_before) {
    if (absl::Status s = StageTrim(*batch.trim_events_before, last_sequence, write); !s.ok()) return s;
  }
  rocksdb::Status s = write.Put(handles_[kFamilies], kAppliedIndexKey, EncodeU64(index));
  if (!s.ok()) return internal::FromRocks(s, "stage the applied index");
  // Not synced: see the header (the replicated log is the durability).
  s = db_->Write(rocksdb::WriteOptions(), &write);
  if (!s.ok()) return internal::FromRocks(s, "replicated write");
  last_event_sequence_.store(last_sequence, std::memory_order_relaxed);
  applied_index_.store(index, std::memory_order_release);
  return absl::OkStatus();
}

absl::StatusOr<std::string> RocksJobStore::Export(const std::atomic<bool>* cancel) const {
  const auto cancelled = [cancel] { return cancel != nullptr && cancel->load(std::memory_order_relaxed); };
  if (cancelled()) return absl::CancelledError("the export was abandoned");
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  // The header's count is filled in at the end: the records are built in place, so a
  // large store is held once, not twice.
  std::string records(1, kExportVersion);
  records.append(EncodeU64(0));
  std::uint64_t count = 0;
  absl::Status status;
  rocksdb::Slice upper(internal::AfterAllKeys());
  for (int family = 0; family <= kFamilies && status.ok(); ++family) {
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper;
    read_options.snapshot = snapshot;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[family]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (count % 1024 == 1023 && cancelled()) {
        status = absl::CancelledError("the export was abandoned");
        break;
      }
      records.push_back(static_cast<char>(family));
      AppendU32(records, static_cast<std::uint32_t>(it->key().size()));
      records.append(it->key().data(), it->key().size());
      AppendU32(records, static_cast<std::uint32_t>(it->value().size()));
      records.append(it->value().data(), it->value().size());
      ++count;
    }
    if (status.ok()) status = internal::FromRocks(it->status(), "export");
  }
  db_->ReleaseSnapshot(snapshot);
  if (!status.ok()) return status;
  records.replace(1, kExportHeader - 1, EncodeU64(count));
  return records;
}

absl::Status RocksJobStore::Import(absl::string_view exported, std::uint64_t at_least_index) {
  if (exported.size() < kExportHeader) return MalformedExport("shorter than its header");
  if (exported[0] != kExportVersion) {
    return MalformedExport(absl::StrFormat("version %d, this store reads version %d", exported[0], kExportVersion));
  }
  const std::uint64_t count = DecodeU64(exported.substr(1, 8));
  absl::string_view rest = exported.substr(kExportHeader);
  if (count > rest.size() / kExportRecordHeader) {
    return MalformedExport(absl::StrFormat("%d records cannot fit in %d bytes", count, rest.size()));
  }

  // Every family is emptied first: everything below AfterAllKeys() is every key.
  rocksdb::WriteBatch write;
  for (int family = 0; family <= kFamilies; ++family) {
    rocksdb::Status s = write.DeleteRange(handles_[family], "", internal::AfterAllKeys());
    if (!s.ok()) return internal::FromRocks(s, "stage the import");
  }
  std::int64_t last_sequence = 0;
  std::uint64_t index = at_least_index;
  for (std::uint64_t n = 0; n < count; ++n) {
    if (rest.size() < kExportRecordHeader) return MalformedExport(absl::StrFormat("record %d is truncated", n));
    const int family = static_cast<unsigned char>(rest[0]);
    const std::uint32_t key_size = DecodeU32(rest.substr(1, 4));
    if (family > kFamilies) return MalformedExport(absl::StrFormat("record %d has family %d", n, family));
    if (rest.size() - 5 < key_size + std::size_t{4}) {
      return MalformedExport(absl::StrFormat("record %d's key is truncated", n));
    }
    const absl::string_view key = rest.substr(5, key_size);
    const std::uint32_t value_size = DecodeU32(rest.substr(5 + key_size, 4));
    rest.remove_prefix(9 + key_size);
    if (rest.size() < value_size) return MalformedExport(absl::StrFormat("record %d's value is truncated", n));
    const absl::string_view value = rest.substr(0, value_size);
    rest.remove_prefix(value_size);
    if (key.empty() || key >= internal::AfterAllKeys()) {
      return MalformedExport(absl::StrFormat("record %d has a key outside the store's key space", n));
    }
    if (family == static_cast<int>(Family::kEvents)) {
      absl::StatusOr<std::int64_t> sequence = internal::DecodeEventKey(key);
      if (!sequence.ok()) return MalformedExport(sequence.status().message());
      last_sequence = std::max(last_sequence, *sequence);
    }
    if (family == kFamilies && key == kAppliedIndexKey) {
      if (value.size() != 8) return MalformedExport("the applied index is not 8 bytes");
      index = std::max(index, DecodeU64(value));
      continue;  // written below, once
    }
    rocksdb::Status s = write.Put(handles_[family], ToSlice(key), ToSlice(value));
    if (!s.ok()) return internal::FromRocks(s, "stage the import");
  }
  if (!rest.empty()) return MalformedExport(absl::StrFormat("%d bytes after the last record", rest.size()));
  rocksdb::Status s = write.Put(handles_[kFamilies], kAppliedIndexKey, EncodeU64(index));
  if (!s.ok()) return internal::FromRocks(s, "stage the import");

  std::lock_guard<std::mutex> write_lock(write_mu_);
  rocksdb::WriteOptions write_options;
  write_options.sync = true;
  s = db_->Write(write_options, &write);
  if (!s.ok()) return internal::FromRocks(s, "import");
  last_event_sequence_.store(last_sequence, std::memory_order_relaxed);
  applied_index_.store(index, std::memory_order_release);
  return absl::OkStatus();
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

// The jobs family, read page by page on the read pool from the snapshot Recover took;
// the snapshot is released with it.
//
// Read-ahead: once NextJobs has returned a page, the next one is read and parsed on the
// read pool while the caller folds that one into its state on its loop, so the two
// overlap (on 1M jobs each side takes about half of the time). At most one read is in
// flight, so at most two pages are held: the caller's and the one read ahead.
class RocksJobStore::RocksJobRecovery final : public JobRecovery {
 public:
  using Page = absl::StatusOr<std::vector<Job>>;

  RocksJobRecovery(const RocksJobStore& store, const rocksdb::Snapshot* snapshot, RecoveredState state,
                   RecoverOptions options)
      : JobRecovery(std::move(state)), store_(store), snapshot_(snapshot), options_(options) {
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper_;
    read_options.snapshot = snapshot_;
    // Recovery reads every job once: keep them out of the block cache.
    read_options.fill_cache = false;
    jobs_.reset(store_.db_->NewIterator(read_options, store_.handle(Family::kJobs)));
  }
  // Blocks until a read ahead in flight has ended (one page's read at most).
  ~RocksJobRecovery() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      read_done_.wait(lock, [this] { return !reading_; });
    }
    jobs_.reset();  // an iterator must not outlive its snapshot
    store_.db_->ReleaseSnapshot(snapshot_);
  }

  Task<Page> NextJobs() override {
    if (ended_) co_return std::vector<Job>{};
    if (!started_) {
      started_ = true;
      StartRead();
    }
    Page page = co_await runtime::ExternalCompletion<Page>([this](runtime::Completer<Page> done) {
      std::unique_lock<std::mutex> lock(mu_);
      if (!ahead_.has_value()) {
        waiter_.emplace(done);  // the read in flight hands its page over
        return;
      }
      Page ready = *std::move(ahead_);
      ahead_.reset();
      lock.unlock();
      done(std::move(ready));
    });
    if (page.ok() && !page->empty()) {
      StartRead();
    } else {
      ended_ = true;
    }
    co_return page;
  }

 private:
  void StartRead() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = true;
    }
    store_.read_pool().Submit([this] {
      Page page = ReadPage();
      std::optional<runtime::Completer<Page>> waiter;
      {
        std::lock_guard<std::mutex> lock(mu_);
        waiter.swap(waiter_);
        if (!waiter.has_value()) ahead_.emplace(std::move(page));
        reading_ = false;
        read_done_.notify_all();
      }
      // `this` may be gone once the lock is released; the waiter is not (it awaits).
      if (waiter.has_value()) (*waiter)(std::move(page));
    });
  }

  // On the read pool, one at a time (reading_).
  Page ReadPage() {
    if (!positioned_) {
      jobs_->SeekToFirst();
      positioned_ = true;
    }
    internal::JobPageBuilder page(options_);
    for (; jobs_->Valid() && !page.full(); jobs_->Next()) {
      if (absl::Status s = page.Add(View(jobs_->key()), View(jobs_->value())); !s.ok()) return s;
    }
    if (!jobs_->status().ok()) return internal::FromRocks(jobs_->status(), "scan jobs");
    return std::move(page).Finish();
  }

  const RocksJobStore& store_;
  const rocksdb::Snapshot* const snapshot_;
  const RecoverOptions options_;
  const rocksdb::Slice upper_{internal::AfterAllKeys()};
  std::unique_ptr<rocksdb::Iterator> jobs_;  // used by ReadPage only
  bool positioned_ = false;                   // used by ReadPage only
  bool started_ = false;                      // on the caller's loop: the first read was started
  bool ended_ = false;                        // on the caller's loop: an empty page or an error was returned

  std::mutex mu_;
  std::condition_variable read_done_;
  bool reading_ = false;                             // guarded by mu_
  std::optional<Page> ahead_;                        // guarded by mu_: read, not yet asked for
  std::optional<runtime::Completer<Page>> waiter_;   // guarded by mu_: NextJobs waiting for the read
};

absl::StatusOr<std::unique_ptr<JobRecovery>> RocksJobStore::RecoverNow(RecoverOptions options) const {
  // One snapshot, so that the jobs and their index entries agree.
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  internal::RecoveryBuilder builder;
  absl::Status status;
  for (Family family : {Family::kReady, Family::kPending, Family::kMeta, Family::kBulkOperations}) {
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
  if (!status.ok()) {
    db_->ReleaseSnapshot(snapshot);
    return status;
  }
  return std::make_unique<RocksJobRecovery>(*this, snapshot, std::move(builder).Finish(), options);
}

Task<absl::StatusOr<std::unique_ptr<JobRecovery>>> RocksJobStore::Recover(RecoverOptions options) {
  co_return co_await runtime::ToThread(read_pool(), [this, options] { return RecoverNow(options); });
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
