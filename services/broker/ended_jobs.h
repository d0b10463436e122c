#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/time/time.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/compact_id.h"

namespace cohort::broker {

// A finished job as the engine keeps it in memory once its end is durable: what
// listing filters, retention, idempotency and bulk operations decide on, in about a
// hundred bytes. The full record stays in the store (JobStore::GetJob).
struct EndedJob {
  using Label = std::pair<std::string, std::string>;  // key, value
  // Set only when the job has an idempotency key or labels, so kept out of line: the
  // key (to forget it on expiry) and the labels when they are small (so that a label
  // selector needs no store read), each label interned by EndedJobs (8 bytes a label).
  struct Extras {
    std::string idempotency_key;
    bool labels_known = true;
    std::vector<const Label*> labels;
  };
  const std::string* queue = nullptr;       // interned by EndedJobs
  const std::string* kind = nullptr;        // interned
  const std::string* error_code = nullptr;  // interned; null when the job has no error
  std::int64_t sequence = 0;                // Job.sequence of the stored version
  std::int64_t create_seconds = 0, end_seconds = 0, expire_seconds = 0;
  std::int32_t create_nanos = 0, end_nanos = 0, expire_nanos = 0;
  cohort::v1::JobState state = cohort::v1::JOB_STATE_UNSPECIFIED;
  bool has_end_time = false;
  bool has_expire_time = false;
  std::unique_ptr<Extras> extras;

  bool labels_known() const { return extras == nullptr || extras->labels_known; }
  // A Job with the fields above (id, state, queue, kind, times, error code, sequence,
  // the labels when known): what JobMatcher, JobIndex and JobBatch::DeleteJob read.
  cohort::v1::Job Probe(const std::string& id) const;
};

// The ended jobs whose end is durable, by id, as EndedJob summaries, and a small LRU
// cache of their full records (the ones most recently finished or read), bounded by
// count and by bytes. Interns queue, kind and error code names and labels (key and
// value), counting their uses, so a summary holds pointers and a name or label is
// freed with its last user. Ids are held as
// CompactId (24 bytes, no heap block).
//
// Also indexes the summaries by end time (EndedBetween).
//
// Loop thread only, as the engine. Complexity: O(log n) per lookup, insert and erase.
class EndedJobs {
 public:
  struct CacheLimits {
    std::size_t jobs = 4'096;
    std::size_t bytes = 16 << 20;
  };
  explicit EndedJobs(CacheLimits limits) : limits_(limits) {}
  EndedJobs(const EndedJobs&) = delete;
  EndedJobs& operator=(const EndedJobs&) = delete;
  ~EndedJobs();

  // Keeps `job` (terminal, durable as it is) as a summary, and its full record in the
  // cache when `cache` (moved there). Replaces an earlier summary of the same id.
  void Insert(cohort::v1::Job job, bool cache);
  // Forgets the job (summary and cached record); no-op for an unknown id.
  void Erase(const std::string& id);

  const EndedJob* Find(const std::string& id) const {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : &it->second;
  }
  bool contains(const std::string& id) const { return jobs_.contains(id); }
  std::size_t size() const { return jobs_.size(); }
  bool empty() const { return jobs_.empty(); }
  // The first id after `after` ("" for the first), or nullopt.
  std::optional<std::string> After(const std::string& after) const {
    auto it = after.empty() ? jobs_.begin() : jobs_.upper_bound(after);
    return it == jobs_.end() ? std::nullopt : std::optional<std::string>(it->first.str());
  }
  // The largest id, or nullopt.
  std::optional<std::string> Last() const {
    return jobs_.empty() ? std::nullopt : std::optional<std::string>(jobs_.rbegin()->first.str());
  }
  // (end time as Unix nanoseconds, id) of every summary with an end time, ordered.
  using EndKey = std::pair<std::int64_t, CompactId>;
  using ByEnd = absl::btree_set<EndKey>;
  // The summaries that ended in [after, before) (null: unbounded), in end-time order:
  // the finished-time index ListJobs and bulk operations start from.
  std::pair<ByEnd::const_iterator, ByEnd::const_iterator> EndedBetween(const absl::Time* after,
                                                                      const absl::Time* before) const;
  // Every summary in id order (recovery, tests).
  using ById = absl::btree_map<CompactId, EndedJob, CompactIdLess>;
  const ById& all() const { return jobs_; }

  // The cached full record of `id` if it is the version summarised (same sequence).
  const cohort::v1::Job* Cached(const std::string& id);
  // Caches `job` if it is the version summarised; evicts the least recently used
  // beyond the limits.
  void Cache(cohort::v1::Job job);

 private:
  const std::string* Intern(const std::string& name);
  void Release(const std::string* name);
  const EndedJob::Label* InternLabel(const std::string& key, const std::string& value);
  // Releases the summary's names and labels.
  void ReleaseAll(const EndedJob& e);
  void Uncache(const std::string& id);

  CacheLimits limits_;
  ById jobs_;
  ByEnd by_end_;  // kept with jobs_ by Insert and Erase
  absl::node_hash_map<std::string, std::size_t> names_;  // name -> uses; nodes are stable
  absl::node_hash_map<EndedJob::Label, std::size_t> labels_;  // label -> uses; stable too
  // The cache: most recent first (each record with its serialized size, counted in
  // cached_bytes_), and where each id sits in it.
  struct CachedJob {
    cohort::v1::Job job;
    std::size_t bytes;
  };
  std::list<CachedJob> lru_;
  absl::flat_hash_map<std::string, std::list<CachedJob>::iterator> cached_;
  std::size_t cached_bytes_ = 0;
};

}  // namespace cohort::broker
