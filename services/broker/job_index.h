#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "google/protobuf/map.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/broker/compact_id.h"

namespace cohort::broker {

// Labels up to this many bytes (keys and values together) are indexed here and kept in
// a finished job's summary (EndedJobs); larger ones are in neither, and the job is in
// JobIndex::LabelsUnindexed() instead.
inline constexpr std::size_t kIndexedLabelBytes = 128;
std::size_t LabelBytes(const google::protobuf::Map<std::string, std::string>& labels);

// Ordered sets of job ids (CompactId: 24 bytes each, no heap block) per state, per
// queue, per kind, per label (key and value) and per error code: the candidates ListJobs and bulk operations start from instead
// of scanning every job. Ids are k-sortable, so each set is in submission order and
// can be walked from any position in either direction, and a creation-time range is
// an id range (CreatedIdRange) but for the few jobs in IdsOffTheirCreateTime().
//
// Finished jobs by end time are in EndedJobs (summaries) and EndedMaybeLive (the
// records not summarized yet).
//
// The engine keeps it exact at its choke-points: Add when a job is created or
// recovered, Move on every state change (Transition), Remove when its record goes
// (deletion, expiry). A key whose set becomes empty is dropped, so the index holds
// O(jobs + labels of jobs) ids and O(distinct keys in use) sets. Loop thread only, as
// the engine.
class JobIndex {
 public:
  using IdSet = absl::btree_set<CompactId, CompactIdLess>;

  // `job` is new to the index, in its current state.
  void Add(const cohort::v1::Job& job);
  // `job` (already in the index) changed state from `from` to its current one.
  void Move(const cohort::v1::Job& job, cohort::v1::JobState from);
  // `job` leaves the index (in its current state). A finished job's summary
  // (EndedJob::Probe) will do: it has the labels whenever they were indexed.
  void Remove(const cohort::v1::Job& job);

  // The ids of jobs in `state` / queue / kind / with label key=value / ended with an
  // error (common::EndedWithError) whose code is `code`; null when there are none.
  const IdSet* ByState(cohort::v1::JobState state) const { return Find(by_state_, static_cast<int>(state)); }
  const IdSet* ByQueue(const std::string& queue) const { return Find(by_queue_, queue); }
  const IdSet* ByKind(const std::string& kind) const { return Find(by_kind_, kind); }
  const IdSet* ByLabel(const std::string& key, const std::string& value) const {
    return Find(by_label_, std::make_pair(key, value));
  }
  const IdSet* ByErrorCode(const std::string& code) const { return Find(by_error_, code); }
  // Jobs whose labels are over kIndexedLabelBytes: in no ByLabel set, whatever their
  // labels; a label filter checks each of them.
  const IdSet& LabelsUnindexed() const { return labels_unindexed_; }
  // Jobs whose id does not tell their create_time (see CreatedIdRange): a creation-time
  // filter checks each of them.
  const IdSet& IdsOffTheirCreateTime() const { return off_create_time_; }

  // Jobs that ended here (Move into a finished state, or Add of one without an end
  // time) and may still be live records: the finished-time index (EndedJobs::
  // EndedBetween) holds summaries only, so a finished-time filter checks each of these
  // too. Holds some already summarized until PruneEnded drops them.
  const IdSet& EndedMaybeLive() const { return ended_maybe_live_; }
  // Drops from EndedMaybeLive() the ids for which `live(id)` is false, checking at
  // most `budget` ids from where the last call stopped (round robin). Const: the ids
  // dropped were redundant (summaries, in EndedJobs' index), so no walk's candidates
  // change; it must not run while a walk over EndedMaybeLive() is in use.
  void PruneEnded(std::size_t budget, absl::FunctionRef<bool(const std::string&)> live) const;

  // Distinct kinds of the jobs held.
  std::size_t KindCount() const { return by_kind_.size(); }

  // Jobs of `queue` in any state.
  std::size_t QueueSize(const std::string& queue) const {
    const IdSet* s = ByQueue(queue);
    return s == nullptr ? 0 : s->size();
  }

  // How far a job id's time may run ahead of the job's create_time and still be taken
  // as telling it (ids run ahead when the clock steps back, or past 65,536 ids in a
  // millisecond); a job beyond it is in IdsOffTheirCreateTime().
  static constexpr absl::Duration kIdAhead = absl::Minutes(1);
  // Ids [first, last) holding every job created in [after, before) but those in
  // IdsOffTheirCreateTime(); an empty bound is none (either side may be unset). The
  // end allows for the most any job's id has run ahead (at most kIdAhead).
  std::pair<std::string, std::string> CreatedIdRange(const absl::Time* after, const absl::Time* before) const;

 private:
  template <typename Map, typename Key>
  static const IdSet* Find(const Map& map, const Key& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
  }
  template <typename Map, typename Key>
  static bool Erase(Map& map, const Key& key, const std::string& id) {
    auto it = map.find(key);
    if (it == map.end()) return false;
    const bool erased = it->second.erase(id) > 0;
    if (it->second.empty()) map.erase(it);
    return erased;
  }
  void IndexError(const cohort::v1::Job& job);
  void UnindexError(const cohort::v1::Job& job);

  absl::flat_hash_map<int, IdSet> by_state_;
  absl::flat_hash_map<std::string, IdSet> by_queue_;
  absl::flat_hash_map<std::string, IdSet> by_kind_;
  absl::flat_hash_map<std::pair<std::string, std::string>, IdSet> by_label_;
  absl::flat_hash_map<std::string, IdSet> by_error_;
  IdSet labels_unindexed_;
  IdSet off_create_time_;
  mutable IdSet ended_maybe_live_;   // see PruneEnded
  mutable std::string prune_after_;  // where PruneEnded goes on
  // The most milliseconds a job's id ran ahead of its create_time (never lowered).
  std::int64_t max_id_ahead_ms_ = 0;
};

}  // namespace cohort::broker
