// The ReplicatedJobStore's log entry format: a JobBatch survives encoding exactly, and
// anything that is not an entry this build wrote is refused with a status (never read
// out of bounds: run under ASan by test.sh's sanitizer phase).
#include "libs/replication/job_batch_codec.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::replication {
namespace {

using store::Family;
using store::JobBatch;

JobBatch SampleBatch() {
  JobBatch batch;
  cohort::v1::Job queued;
  queued.set_id("job-1");
  queued.set_state(cohort::v1::JOB_STATE_QUEUED);
  queued.mutable_spec()->set_queue("default");
  queued.mutable_spec()->set_payload(std::string("\0binary\xff", 8));
  batch.PutJob(queued, nullptr);
  cohort::v1::Job running = queued;
  running.set_state(cohort::v1::JOB_STATE_RUNNING);
  batch.PutJob(running, &queued);  // erases the ready entry
  cohort::v1::JobEvent event;
  event.set_sequence(42);
  event.set_job_id("job-1");
  batch.AppendEvent(event);
  batch.PutMeta("cursor", "");
  batch.DeleteMeta("old");
  cohort::v1::BulkOperation op;
  op.set_id("bulk-1");
  batch.PutBulkOperation(op);
  batch.TrimEventsBefore(7);
  return batch;
}

void ExpectSameRecords(const std::vector<store::ReplicatedRecord>& a, const std::vector<JobBatch::Record>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].family, b[i].family) << i;
    EXPECT_EQ(a[i].erase, b[i].erase) << i;
    EXPECT_EQ(a[i].key, b[i].key) << i;
    EXPECT_EQ(a[i].value, b[i].value) << i;
  }
}

TEST(JobBatchCodec, ABatchDecodesToItsRecordsEventSequenceAndTrim) {
  JobBatch batch = SampleBatch();
  ASSERT_TRUE(batch.status().ok()) << batch.status();
  std::string entry = EncodeJobBatch(batch);
  std::size_t payload = 0;
  for (const JobBatch::Record& r : batch.record_list()) payload += r.key.size() + r.value.size();
  EXPECT_EQ(entry.size(), kBatchHeaderBytes + payload + kRecordOverheadBytes * batch.record_list().size());

  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(entry);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->barrier);
  ExpectSameRecords(decoded->batch.records, batch.record_list());
  EXPECT_EQ(decoded->batch.max_event_sequence, 42);
  EXPECT_EQ(decoded->batch.trim_events_before, 7);
  // Nothing is copied: every key and value is a view into the entry.
  for (const store::ReplicatedRecord& r : decoded->batch.records) {
    EXPECT_GE(r.key.data(), entry.data());
    EXPECT_LE(r.key.data() + r.key.size(), entry.data() + entry.size());
    if (!r.value.empty()) {
      EXPECT_GE(r.value.data(), entry.data());
      EXPECT_LE(r.value.data() + r.value.size(), entry.data() + entry.size());
    }
  }
}

TEST(JobBatchCodec, ABatchWithoutTrimDecodesWithoutTrim) {
  JobBatch batch;
  batch.PutMeta("k", "v");
  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(EncodeJobBatch(batch));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->batch.trim_events_before.has_value());
  EXPECT_EQ(decoded->batch.max_event_sequence, 0);
  ASSERT_EQ(decoded->batch.records.size(), 1u);
  EXPECT_EQ(decoded->batch.records[0].family, Family::kMeta);
}

TEST(JobBatchCodec, MergedBatchesDecodeToEveryRecordInOrderWithTheHighestSequenceAndTrim) {
  JobBatch first = SampleBatch();  // event 42, trim 7
  JobBatch second;
  second.PutMeta("cursor", "2");  // overrides first's cursor when applied in order
  cohort::v1::JobEvent event;
  event.set_sequence(40);
  event.set_job_id("job-2");
  second.AppendEvent(event);
  second.TrimEventsBefore(30);
  JobBatch third;
  third.DeleteMeta("cursor");
  const JobBatch* const batches[] = {&first, &second, &third};
  std::string entry = EncodeJobBatches(batches);
  EXPECT_EQ(entry.size(), kBatchHeaderBytes + MergedBytes(first) + MergedBytes(second) + MergedBytes(third));

  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(entry);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  std::vector<JobBatch::Record> expected = first.record_list();
  expected.insert(expected.end(), second.record_list().begin(), second.record_list().end());
  expected.insert(expected.end(), third.record_list().begin(), third.record_list().end());
  ExpectSameRecords(decoded->batch.records, expected);
  EXPECT_EQ(decoded->batch.max_event_sequence, 42);
  EXPECT_EQ(decoded->batch.trim_events_before, 30);
  // One batch merged alone is the entry EncodeJobBatch writes.
  const JobBatch* const one[] = {&second};
  EXPECT_EQ(EncodeJobBatches(one), EncodeJobBatch(second));
}

TEST(JobBatchCodec, ABarrierDecodesAsABarrier) {
  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(EncodeBarrier());
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_TRUE(decoded->barrier);
  EXPECT_TRUE(decoded->batch.records.empty());
}

TEST(JobBatchCodec, EveryTruncationAndEveryExtensionIsRefused) {
  const JobBatch sample = SampleBatch();
  JobBatch meta;
  meta.PutMeta("cursor", "2");
  const JobBatch* const merged[] = {&sample, &meta, &sample};
  for (const std::string& entry : {EncodeJobBatch(sample), EncodeJobBatches(merged), EncodeBarrier()}) {
    for (std::size_t n = 0; n < entry.size(); ++n) {
      EXPECT_EQ(DecodeEntry(entry.substr(0, n)).status().code(), absl::StatusCode::kDataLoss) << "prefix " << n;
    }
    EXPECT_EQ(DecodeEntry(entry + '\0').status().code(), absl::StatusCode::kDataLoss);
  }
}

TEST(JobBatchCodec, MalformedFieldsAreRefusedNamingTheProblem) {
  const std::string good = EncodeJobBatch(SampleBatch());
  // Offsets in the format: version 0, kind 1, max_event_sequence 2..9, has_trim 10,
  // trim 11..18, count 19..22, first record's family 23, erase 24, key size 25..28.
  struct Case {
    std::size_t offset;
    char byte;
    absl::StatusCode code;
    const char* says;
  };
  const Case cases[] = {
      {0, 2, absl::StatusCode::kUnimplemented, "version 2"},
      {1, 3, absl::StatusCode::kDataLoss, "unknown kind 3"},
      {10, 2, absl::StatusCode::kDataLoss, "trim flag 2"},
      {22, '\x7f', absl::StatusCode::kDataLoss, "cannot fit"},
      {23, 6, absl::StatusCode::kDataLoss, "family 6"},
      {24, 2, absl::StatusCode::kDataLoss, "erase flag 2"},
      {28, '\x10', absl::StatusCode::kDataLoss, "truncated"},
  };
  for (const Case& c : cases) {
    std::string bad = good;
    bad[c.offset] = c.byte;
    absl::Status s = DecodeEntry(bad).status();
    EXPECT_EQ(s.code(), c.code) << "offset " << c.offset << ": " << s;
    EXPECT_NE(s.message().find(c.says), absl::string_view::npos) << s;
  }
}

TEST(JobBatchCodec, AnEraseCarryingAValueAndAnEmptyKeyAreRefused) {
  JobBatch batch;
  batch.DeleteMeta("k");  // one record: family 23, erase 24, key size 25..28, key 29, value size 30..33
  std::string entry = EncodeJobBatch(batch);
  std::string with_value = entry.substr(0, 30) + std::string("\x01\0\0\0", 4) + "v";
  EXPECT_EQ(DecodeEntry(with_value).status().code(), absl::StatusCode::kDataLoss);
  std::string empty_key = entry.substr(0, 25) + std::string(4, '\0') + std::string(4, '\0');
  absl::Status s = DecodeEntry(empty_key).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("empty key"), absl::string_view::npos) << s;
}

TEST(JobBatchCodec, GarbageNeverDecodesOutOfBounds) {
  // Deterministic pseudo-random bytes behind a valid header: every outcome is a
  // status or a batch whose records lie inside the input.
  std::uint64_t x = 88172645463325252ull;
  for (int round = 0; round < 2000; ++round) {
    std::string entry = {'\1', '\1'};
    std::size_t size = round % 64;
    for (std::size_t i = 0; i < size; ++i) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      entry.push_back(static_cast<char>(x & 0xff));
    }
    absl::StatusOr<DecodedEntry> decoded = DecodeEntry(entry);
    if (decoded.ok()) {
      for (const store::ReplicatedRecord& r : decoded->batch.records) EXPECT_LE(r.key.size() + r.value.size(), size);
    } else {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << decoded.status();
    }
  }
}

}  // namespace
}  // namespace cohort::replication
