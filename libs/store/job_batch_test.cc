#include "libs/store/job_batch.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace cohort::store {
namespace {

using cohort::v1::Job;
using cohort::v1::JobEvent;
using google::protobuf::util::MessageDifferencer;

Job QueuedJob() {
  Job job;
  job.set_id("01J0000000000000000000000A");
  job.mutable_spec()->set_queue("default");
  job.mutable_spec()->set_kind("builtin.noop");
  job.mutable_spec()->set_payload(std::string(300, 'p'));  // a length that takes two varint bytes
  (*job.mutable_spec()->mutable_labels())["team"] = "a";
  job.set_state(cohort::v1::JOB_STATE_QUEUED);
  job.mutable_queue_time()->set_seconds(1'700'000'000);
  job.set_sequence(7);
  return job;
}

JobEvent EventWithoutJob() {
  JobEvent event;
  event.set_sequence(7);
  event.mutable_time()->set_seconds(1'700'000'000);
  event.set_job_id("01J0000000000000000000000A");
  event.set_to_state(cohort::v1::JOB_STATE_QUEUED);
  event.set_reason(cohort::v1::TRANSITION_REASON_SUBMITTED);
  return event;
}

// The value of the batch's only event record.
std::string EventValue(const JobBatch& batch) {
  for (const JobBatch::Record& r : batch.record_list()) {
    if (r.family == Family::kEvents) return r.value;
  }
  ADD_FAILURE() << "no event record";
  return "";
}

TEST(JobBatch, AnEventWithAnEncodedJobIsStoredAsTheSerializedEventWithThatJob) {
  const Job job = QueuedJob();
  JobEvent whole = EventWithoutJob();
  *whole.mutable_job() = job;

  JobBatch by_message;
  by_message.AppendEvent(whole);
  JobBatch by_bytes;
  by_bytes.AppendEvent(EventWithoutJob(), job.SerializeAsString());

  ASSERT_TRUE(by_bytes.status().ok()) << by_bytes.status();
  EXPECT_EQ(EventValue(by_bytes), whole.SerializeAsString());
  EXPECT_EQ(EventValue(by_bytes), EventValue(by_message));
  EXPECT_EQ(by_bytes.bytes(), by_message.bytes());
  EXPECT_EQ(by_bytes.max_event_sequence(), 7);
  JobEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(EventValue(by_bytes)));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, whole)) << parsed.DebugString();
}

TEST(JobBatch, AnEmptyEncodedJobIsStoredAsAnEventWithAnEmptyJob) {
  JobEvent whole = EventWithoutJob();
  whole.mutable_job();
  JobBatch batch;
  batch.AppendEvent(EventWithoutJob(), "");
  EXPECT_EQ(EventValue(batch), whole.SerializeAsString());
}

TEST(JobBatch, AnEventWithUnknownFieldsAndAnEncodedJobParsesBackToBoth) {
  const Job job = QueuedJob();
  // An event from a newer writer: field 99 is unknown here, and is serialized after
  // the known ones, so the job cannot simply be appended after it.
  JobEvent event = EventWithoutJob();
  event.GetReflection()->MutableUnknownFields(&event)->AddVarint(99, 5);
  JobEvent whole = event;
  *whole.mutable_job() = job;

  JobBatch batch;
  batch.AppendEvent(event, job.SerializeAsString());

  ASSERT_TRUE(batch.status().ok()) << batch.status();
  EXPECT_EQ(EventValue(batch), whole.SerializeAsString());
  JobEvent parsed;
  ASSERT_TRUE(parsed.ParseFromString(EventValue(batch)));
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, whole)) << parsed.DebugString();
  EXPECT_EQ(parsed.GetReflection()->GetUnknownFields(parsed).field_count(), 1);
}

TEST(JobBatch, AnEventThatCarriesAJobAndAnEncodedOneIsRefused) {
  JobEvent event = EventWithoutJob();
  *event.mutable_job() = QueuedJob();
  JobBatch batch;
  batch.AppendEvent(event, QueuedJob().SerializeAsString());
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(batch.record_list().empty());
}

TEST(JobBatch, AnEncodedJobThatDoesNotParseIsRefusedWhenTheEventHasUnknownFields) {
  JobEvent event = EventWithoutJob();
  event.GetReflection()->MutableUnknownFields(&event)->AddVarint(99, 5);
  JobBatch batch;
  batch.AppendEvent(event, "\xff\xff");
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JobBatch, AnEventWithAnEncodedJobNeedsAPositiveSequence) {
  JobEvent event = EventWithoutJob();
  event.set_sequence(0);
  JobBatch batch;
  batch.AppendEvent(event, QueuedJob().SerializeAsString());
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JobBatch, PutJobWithItsEncodingWritesTheSameRecordsAsPutJob) {
  Job queued = QueuedJob();
  Job running = queued;
  running.set_state(cohort::v1::JOB_STATE_RUNNING);
  running.set_attempt(1);

  JobBatch plain;
  plain.PutJob(queued, nullptr);
  plain.PutJob(running, &queued);
  JobBatch encoded;
  encoded.PutJob(queued, nullptr, queued.SerializeAsString());
  encoded.PutJob(running, &queued, running.SerializeAsString());

  ASSERT_EQ(plain.record_list().size(), encoded.record_list().size());
  for (std::size_t i = 0; i < plain.record_list().size(); ++i) {
    const JobBatch::Record& a = plain.record_list()[i];
    const JobBatch::Record& b = encoded.record_list()[i];
    EXPECT_EQ(a.family, b.family) << i;
    EXPECT_EQ(a.erase, b.erase) << i;
    EXPECT_EQ(a.key, b.key) << i;
    EXPECT_EQ(a.value, b.value) << i;
  }
  EXPECT_EQ(plain.bytes(), encoded.bytes());
}

}  // namespace
}  // namespace cohort::store
