#include "libs/store/job_batch.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/unknown_field_set.h"
#include "google/protobuf/wire_format_lite.h"
#include "libs/store/internal/keys.h"

namespace cohort::store {

using cohort::v1::Job;
using cohort::v1::JobEvent;

void JobBatch::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

void JobBatch::Add(Family family, bool erase, std::string key, std::string value) {
  bytes_ += key.size() + value.size();
  records_.push_back(Record{family, erase, std::move(key), std::move(value)});
}

void JobBatch::PutJob(const Job& job, const Job* previous) { PutJob(job, previous, job.SerializeAsString()); }

void JobBatch::PutJob(const Job& job, const Job* previous, std::string serialized) {
  if (absl::Status s = internal::CheckPrintableKey("job id", job.id()); !s.ok()) return Fail(std::move(s));
  if (previous != nullptr && previous->id() != job.id()) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
        "PutJob of job \"%s\" with the previous version of job \"%s\": pass the same job's stored version",
        job.id(), previous->id())));
  }
  if (job.state() == cohort::v1::JOB_STATE_QUEUED) {
    if (absl::Status s = internal::CheckPrintableKey("queue", job.spec().queue()); !s.ok()) {
      return Fail(std::move(s));
    }
  }
  std::optional<std::string> ready = internal::ReadyKeyOf(job);
  std::optional<std::string> pending = internal::PendingKeyOf(job);
  if (previous != nullptr) {
    std::optional<std::string> old_ready = internal::ReadyKeyOf(*previous);
    std::optional<std::string> old_pending = internal::PendingKeyOf(*previous);
    if (old_ready && old_ready != ready) Add(Family::kReady, true, std::move(*old_ready), "");
    if (old_pending && old_pending != pending) Add(Family::kPending, true, std::move(*old_pending), "");
  }
  if (ready) Add(Family::kReady, false, std::move(*ready), job.id());
  if (pending) Add(Family::kPending, false, std::move(*pending), job.id());
  Add(Family::kJobs, false, job.id(), std::move(serialized));
}

void JobBatch::DeleteJob(const Job& job) {
  if (absl::Status s = internal::CheckPrintableKey("job id", job.id()); !s.ok()) return Fail(std::move(s));
  if (std::optional<std::string> ready = internal::ReadyKeyOf(job)) Add(Family::kReady, true, std::move(*ready), "");
  if (std::optional<std::string> pending = internal::PendingKeyOf(job)) {
    Add(Family::kPending, true, std::move(*pending), "");
  }
  Add(Family::kJobs, true, job.id(), "");
}

void JobBatch::AppendEvent(const JobEvent& event) {
  if (event.sequence() <= 0) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
        "event for job \"%s\" has sequence %d: sequences start at 1", event.job_id(), event.sequence())));
  }
  max_event_sequence_ = std::max(max_event_sequence_, event.sequence());
  Add(Family::kEvents, false, internal::EventKey(event.sequence()), event.SerializeAsString());
}

namespace {

// True if JobEvent.job has the highest field number of JobEvent: then a serializer,
// which writes known fields in number order and unknown ones after them, puts it last.
bool JobIsLastField() {
  static const bool last = [] {
    const google::protobuf::Descriptor* d = JobEvent::descriptor();
    for (int i = 0; i < d->field_count(); ++i) {
      if (d->field(i)->number() > JobEvent::kJobFieldNumber) return false;
    }
    return true;
  }();
  return last;
}

}  // namespace

void JobBatch::AppendEvent(const JobEvent& event, absl::string_view job) {
  if (event.has_job()) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
        "event for job \"%s\" carries a job and an encoded one: pass one", event.job_id())));
  }
  if (event.sequence() <= 0) {
    return Fail(absl::InvalidArgumentError(absl::StrFormat(
        "event for job \"%s\" has sequence %d: sequences start at 1", event.job_id(), event.sequence())));
  }
  if (job.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return Fail(absl::InvalidArgumentError(
        absl::StrFormat("event for job \"%s\" has an encoded job of %d bytes", event.job_id(), job.size())));
  }
  if (!JobIsLastField() || !event.GetReflection()->GetUnknownFields(event).empty()) {
    // The job would not be the last bytes: let the serializer place it.
    JobEvent whole = event;
    if (!whole.mutable_job()->ParseFromArray(job.data(), static_cast<int>(job.size()))) {
      return Fail(absl::InvalidArgumentError(
          absl::StrFormat("event for job \"%s\" has an encoded job that does not parse", event.job_id())));
    }
    return AppendEvent(whole);
  }
  max_event_sequence_ = std::max(max_event_sequence_, event.sequence());
  // The event's fields, then the job as field JobEvent.job: the bytes SerializeAsString()
  // gives for the event with its job set, since the job is its last field.
  using google::protobuf::internal::WireFormatLite;
  using google::protobuf::io::CodedOutputStream;
  constexpr std::uint32_t kJobTag =
      WireFormatLite::MakeTag(JobEvent::kJobFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
  const std::size_t head = event.ByteSizeLong();
  const auto length = static_cast<std::uint32_t>(job.size());
  std::string value;
  value.resize(head + CodedOutputStream::VarintSize32(kJobTag) + CodedOutputStream::VarintSize32(length) +
               job.size());
  auto* out = reinterpret_cast<std::uint8_t*>(value.data());
  out = event.SerializeWithCachedSizesToArray(out);
  out = CodedOutputStream::WriteVarint32ToArray(kJobTag, out);
  out = CodedOutputStream::WriteVarint32ToArray(length, out);
  std::memcpy(out, job.data(), job.size());
  Add(Family::kEvents, false, internal::EventKey(event.sequence()), std::move(value));
}

void JobBatch::PutMeta(absl::string_view key, absl::string_view value) {
  if (absl::Status s = internal::CheckPrintableKey("meta key", key); !s.ok()) return Fail(std::move(s));
  Add(Family::kMeta, false, std::string(key), std::string(value));
}

void JobBatch::DeleteMeta(absl::string_view key) {
  if (absl::Status s = internal::CheckPrintableKey("meta key", key); !s.ok()) return Fail(std::move(s));
  Add(Family::kMeta, true, std::string(key), "");
}

void JobBatch::PutBulkOperation(const cohort::v1::BulkOperation& op) {
  if (absl::Status s = internal::CheckPrintableKey("bulk operation id", op.id()); !s.ok()) return Fail(std::move(s));
  Add(Family::kBulkOperations, false, op.id(), op.SerializeAsString());
}

void JobBatch::DeleteBulkOperation(absl::string_view id) {
  if (absl::Status s = internal::CheckPrintableKey("bulk operation id", id); !s.ok()) return Fail(std::move(s));
  Add(Family::kBulkOperations, true, std::string(id), "");
}

void JobBatch::TrimEventsBefore(std::int64_t sequence) {
  trim_events_before_ = std::max(trim_events_before_.value_or(sequence), sequence);
}

absl::Status JobBatch::CheckCommittable(const BatchLimits& limits) const {
  if (!status_.ok()) return status_;
  if (records() > limits.max_records) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "batch of %d records exceeds the limit of %d records: split it", records(), limits.max_records));
  }
  if (bytes_ > limits.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "batch of %d bytes exceeds the limit of %d bytes: split it", bytes_, limits.max_bytes));
  }
  return absl::OkStatus();
}

}  // namespace cohort::store
