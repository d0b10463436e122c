#include "services/broker/ended_jobs.h"

#include <cstdint>
#include <limits>

#include "services/broker/job_index.h"

namespace cohort::broker {
namespace {

// Seconds beyond which (either way) a time is clamped into int64 nanoseconds: year 2255.
constexpr std::int64_t kNanosSecondsLimit = 9'000'000'000;

// A Timestamp as Unix nanoseconds, clamped; the broker's end times are far within.
std::int64_t EndNanos(std::int64_t seconds, std::int32_t nanos) {
  if (seconds >= kNanosSecondsLimit) return std::numeric_limits<std::int64_t>::max();
  if (seconds <= -kNanosSecondsLimit) return std::numeric_limits<std::int64_t>::min();
  return seconds * 1'000'000'000 + nanos;
}

// `t` as Unix nanoseconds, rounded down (or up when `up`), clamped as EndNanos: a
// whole-nanosecond end time e has e >= t iff e >= BoundNanos(t, false) and e < t iff
// e < BoundNanos(t, true).
std::int64_t BoundNanos(absl::Time t, bool up) {
  const absl::Duration limit = absl::Seconds(kNanosSecondsLimit);
  if (t >= absl::UnixEpoch() + limit) return std::numeric_limits<std::int64_t>::max();
  if (t <= absl::UnixEpoch() - limit) return std::numeric_limits<std::int64_t>::min();
  std::int64_t ns = absl::ToUnixNanos(t);
  if (absl::FromUnixNanos(ns) > t) --ns;
  if (up && absl::FromUnixNanos(ns) < t) ++ns;
  return ns;
}

}  // namespace

cohort::v1::Job EndedJob::Probe(const std::string& id) const {
  cohort::v1::Job job;
  job.set_id(id);
  job.set_state(state);
  job.set_sequence(sequence);
  job.mutable_spec()->set_queue(*queue);
  job.mutable_spec()->set_kind(*kind);
  job.mutable_create_time()->set_seconds(create_seconds);
  job.mutable_create_time()->set_nanos(create_nanos);
  if (has_end_time) {
    job.mutable_end_time()->set_seconds(end_seconds);
    job.mutable_end_time()->set_nanos(end_nanos);
  }
  if (has_expire_time) {
    job.mutable_expire_time()->set_seconds(expire_seconds);
    job.mutable_expire_time()->set_nanos(expire_nanos);
  }
  if (error_code != nullptr) job.mutable_error()->set_code(*error_code);
  if (extras != nullptr) {
    job.mutable_spec()->set_idempotency_key(extras->idempotency_key);
    for (const Label* label : extras->labels) (*job.mutable_spec()->mutable_labels())[label->first] = label->second;
  }
  return job;
}

EndedJobs::~EndedJobs() {
  for (auto& [id, e] : jobs_) ReleaseAll(e);
}

std::pair<EndedJobs::ByEnd::const_iterator, EndedJobs::ByEnd::const_iterator> EndedJobs::EndedBetween(
    const absl::Time* after, const absl::Time* before) const {
  auto first = after == nullptr ? by_end_.begin() : by_end_.lower_bound(EndKey(BoundNanos(*after, false), CompactId()));
  auto last = before == nullptr ? by_end_.end() : by_end_.lower_bound(EndKey(BoundNanos(*before, true), CompactId()));
  return {first, last};
}

void EndedJobs::Insert(cohort::v1::Job job, bool cache) {
  Erase(job.id());
  EndedJob e;
  e.queue = Intern(job.spec().queue());
  e.kind = Intern(job.spec().kind());
  if (job.has_error()) e.error_code = Intern(job.error().code());
  e.sequence = job.sequence();
  e.state = job.state();
  e.create_seconds = job.create_time().seconds();
  e.create_nanos = job.create_time().nanos();
  e.has_end_time = job.has_end_time();
  e.end_seconds = job.end_time().seconds();
  e.end_nanos = job.end_time().nanos();
  e.has_expire_time = job.has_expire_time();
  e.expire_seconds = job.expire_time().seconds();
  e.expire_nanos = job.expire_time().nanos();
  // Labels the index holds stay in the summary too; larger ones are read from the
  // store when a label selector asks (the index lists the job in LabelsUnindexed).
  const std::size_t label_bytes = LabelBytes(job.spec().labels());
  if (!job.spec().idempotency_key().empty() || job.spec().labels_size() > 0) {
    e.extras = std::make_unique<EndedJob::Extras>();
    e.extras->idempotency_key = job.spec().idempotency_key();
    e.extras->labels_known = label_bytes <= kIndexedLabelBytes;
    if (e.extras->labels_known) {
      e.extras->labels.reserve(job.spec().labels_size());
      for (const auto& [k, v] : job.spec().labels()) e.extras->labels.push_back(InternLabel(k, v));
    }
  }
  if (e.has_end_time) by_end_.emplace(EndNanos(e.end_seconds, e.end_nanos), job.id());
  jobs_.emplace(job.id(), std::move(e));
  if (cache) Cache(std::move(job));
}

void EndedJobs::Erase(const std::string& id) {
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  ReleaseAll(it->second);
  if (it->second.has_end_time) by_end_.erase(EndKey(EndNanos(it->second.end_seconds, it->second.end_nanos), CompactId(id)));
  jobs_.erase(it);
  Uncache(id);
}

const cohort::v1::Job* EndedJobs::Cached(const std::string& id) {
  auto it = cached_.find(id);
  if (it == cached_.end()) return nullptr;
  const EndedJob* e = Find(id);
  if (e == nullptr || it->second->job.sequence() != e->sequence) {
    Uncache(id);
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->job;
}

void EndedJobs::Cache(cohort::v1::Job job) {
  const EndedJob* e = Find(job.id());
  if (e == nullptr || e->sequence != job.sequence() || limits_.jobs == 0) return;
  const std::size_t bytes = job.ByteSizeLong();
  if (bytes > limits_.bytes) return;
  Uncache(job.id());
  lru_.push_front(CachedJob{std::move(job), bytes});
  cached_[lru_.front().job.id()] = lru_.begin();
  cached_bytes_ += bytes;
  while (lru_.size() > limits_.jobs || cached_bytes_ > limits_.bytes) Uncache(lru_.back().job.id());
}

void EndedJobs::Uncache(const std::string& id) {
  auto it = cached_.find(id);
  if (it == cached_.end()) return;
  cached_bytes_ -= it->second->bytes;
  lru_.erase(it->second);
  cached_.erase(it);
}

const std::string* EndedJobs::Intern(const std::string& name) {
  auto [it, fresh] = names_.try_emplace(name, 0);
  ++it->second;
  return &it->first;
}

void EndedJobs::Release(const std::string* name) {
  if (name == nullptr) return;
  auto it = names_.find(*name);
  if (it != names_.end() && --it->second == 0) names_.erase(it);
}

const EndedJob::Label* EndedJobs::InternLabel(const std::string& key, const std::string& value) {
  auto [it, fresh] = labels_.try_emplace(EndedJob::Label(key, value), 0);
  ++it->second;
  return &it->first;
}

void EndedJobs::ReleaseAll(const EndedJob& e) {
  Release(e.queue);
  Release(e.kind);
  Release(e.error_code);
  if (e.extras == nullptr) return;
  for (const EndedJob::Label* label : e.extras->labels) {
    auto it = labels_.find(*label);
    if (it != labels_.end() && --it->second == 0) labels_.erase(it);
  }
}

}  // namespace cohort::broker
