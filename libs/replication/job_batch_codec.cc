#include "libs/replication/job_batch_codec.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_format.h"

namespace cohort::replication {
namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kKindBatch = 1;
constexpr std::uint8_t kKindBarrier = 2;
constexpr int kFamilies = static_cast<int>(store::Family::kBulkOperations) + 1;

void PutFixed(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

absl::Status Malformed(absl::string_view why) {
  return absl::DataLossError(absl::StrFormat("malformed job store log entry: %s", why));
}

// Reads fixed-width fields from the front of an entry, refusing to run past its end.
class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}

  bool Fixed(int bytes, std::uint64_t* v) {
    if (in_.size() < static_cast<std::size_t>(bytes)) return false;
    *v = 0;
    for (int i = 0; i < bytes; ++i) *v |= std::uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(bytes);
    return true;
  }

  // A u32 size, then that many bytes.
  bool Sized(absl::string_view* out) {
    std::uint64_t size;
    if (!Fixed(4, &size) || in_.size() < size) return false;
    *out = in_.substr(0, size);
    in_.remove_prefix(size);
    return true;
  }

  std::size_t left() const { return in_.size(); }

 private:
  absl::string_view in_;
};

}  // namespace

std::size_t MergedBytes(const store::JobBatch& batch) {
  return batch.bytes() + kRecordOverheadBytes * batch.record_list().size();
}

std::string EncodeJobBatch(const store::JobBatch& batch) {
  const store::JobBatch* const one[] = {&batch};
  return EncodeJobBatches(one);
}

std::string EncodeJobBatches(absl::Span<const store::JobBatch* const> batches) {
  std::size_t size = kBatchHeaderBytes;
  std::size_t count = 0;
  std::int64_t max_event_sequence = 0;
  std::optional<std::int64_t> trim_before;
  for (const store::JobBatch* batch : batches) {
    size += MergedBytes(*batch);
    count += batch->record_list().size();
    max_event_sequence = std::max(max_event_sequence, batch->max_event_sequence());
    if (batch->trim_events_before()) trim_before = std::max(trim_before.value_or(0), *batch->trim_events_before());
  }
  std::string out;
  out.reserve(size);
  PutFixed(out, kVersion, 1);
  PutFixed(out, kKindBatch, 1);
  PutFixed(out, static_cast<std::uint64_t>(max_event_sequence), 8);
  PutFixed(out, trim_before ? 1 : 0, 1);
  PutFixed(out, static_cast<std::uint64_t>(trim_before.value_or(0)), 8);
  PutFixed(out, count, 4);
  for (const store::JobBatch* batch : batches) {
    for (const store::JobBatch::Record& r : batch->record_list()) {
      PutFixed(out, static_cast<std::uint64_t>(r.family), 1);
      PutFixed(out, r.erase ? 1 : 0, 1);
      PutFixed(out, r.key.size(), 4);
      out.append(r.key);
      PutFixed(out, r.value.size(), 4);
      out.append(r.value);
    }
  }
  return out;
}

std::string EncodeBarrier() {
  std::string out;
  PutFixed(out, kVersion, 1);
  PutFixed(out, kKindBarrier, 1);
  return out;
}

absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view entry) {
  Reader in(entry);
  std::uint64_t version, kind;
  if (!in.Fixed(1, &version) || !in.Fixed(1, &kind)) return Malformed("shorter than its header");
  if (version != kVersion) {
    return absl::UnimplementedError(absl::StrFormat(
        "job store log entry of format version %d: this replica reads version %d (upgrade it)", version, kVersion));
  }
  DecodedEntry out;
  if (kind == kKindBarrier) {
    if (in.left() != 0) return Malformed(absl::StrFormat("%d bytes after a barrier", in.left()));
    out.barrier = true;
    return out;
  }
  if (kind != kKindBatch) return Malformed(absl::StrFormat("unknown kind %d", kind));

  std::uint64_t max_sequence, has_trim, trim, count;
  if (!in.Fixed(8, &max_sequence) || !in.Fixed(1, &has_trim) || !in.Fixed(8, &trim) || !in.Fixed(4, &count)) {
    return Malformed("a batch shorter than its header");
  }
  if (has_trim > 1) return Malformed(absl::StrFormat("trim flag %d", has_trim));
  if (has_trim == 0 && trim != 0) return Malformed("a trim position without the trim flag");
  if (count > in.left() / kRecordOverheadBytes) {
    return Malformed(absl::StrFormat("%d records cannot fit in %d bytes", count, in.left()));
  }
  out.batch.max_event_sequence = static_cast<std::int64_t>(max_sequence);
  if (has_trim) out.batch.trim_events_before = static_cast<std::int64_t>(trim);
  out.batch.records.reserve(count);
  for (std::uint64_t n = 0; n < count; ++n) {
    std::uint64_t family, erase;
    absl::string_view key, value;
    if (!in.Fixed(1, &family) || !in.Fixed(1, &erase) || !in.Sized(&key) || !in.Sized(&value)) {
      return Malformed(absl::StrFormat("record %d of %d is truncated", n, count));
    }
    if (family >= kFamilies) return Malformed(absl::StrFormat("record %d has family %d", n, family));
    if (erase > 1) return Malformed(absl::StrFormat("record %d has erase flag %d", n, erase));
    if (key.empty()) return Malformed(absl::StrFormat("record %d has an empty key", n));
    if (erase == 1 && !value.empty()) return Malformed(absl::StrFormat("record %d erases with a value", n));
    out.batch.records.push_back(store::ReplicatedRecord{static_cast<store::Family>(family), erase == 1, key, value});
  }
  if (in.left() != 0) return Malformed(absl::StrFormat("%d bytes after the last record", in.left()));
  return out;
}

}  // namespace cohort::replication
