#pragma once

#include <cstddef>
#include <string>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// Ordered sets of job ids per state, per queue and per kind: the candidates ListJobs
// and bulk operations start from instead of scanning every job. Ids are k-sortable, so
// each set is in submission order and can be walked from any position in either
// direction.
//
// The engine keeps it exact at its choke-points: Add when a job is created or
// recovered, Move on every state change (Transition), Remove when its record goes
// (deletion, expiry). A key whose set becomes empty is dropped, so the index holds
// O(jobs) ids and O(distinct keys in use) sets. Loop thread only, as the engine.
class JobIndex {
 public:
  using IdSet = absl::btree_set<std::string>;

  // `job` is new to the index, in its current state.
  void Add(const cohort::v1::Job& job);
  // `job` (already in the index) changed state from `from` to its current one.
  void Move(const cohort::v1::Job& job, cohort::v1::JobState from);
  // `job` leaves the index (in its current state).
  void Remove(const cohort::v1::Job& job);

  // The ids of jobs in `state` / queue / kind; null when there are none.
  const IdSet* ByState(cohort::v1::JobState state) const { return Find(by_state_, static_cast<int>(state)); }
  const IdSet* ByQueue(const std::string& queue) const { return Find(by_queue_, queue); }
  const IdSet* ByKind(const std::string& kind) const { return Find(by_kind_, kind); }

  // Distinct kinds of the jobs held.
  std::size_t KindCount() const { return by_kind_.size(); }

  // Jobs of `queue` in any state.
  std::size_t QueueSize(const std::string& queue) const {
    const IdSet* s = ByQueue(queue);
    return s == nullptr ? 0 : s->size();
  }

 private:
  template <typename Map, typename Key>
  static const IdSet* Find(const Map& map, const Key& key) {
    auto it = map.find(key);
    return it == map.end() ? nullptr : &it->second;
  }
  template <typename Map, typename Key>
  static void Erase(Map& map, const Key& key, const std::string& id) {
    auto it = map.find(key);
    if (it == map.end()) return;
    it->second.erase(id);
    if (it->second.empty()) map.erase(it);
  }

  absl::flat_hash_map<int, IdSet> by_state_;
  absl::flat_hash_map<std::string, IdSet> by_queue_;
  absl::flat_hash_map<std::string, IdSet> by_kind_;
};

}  // namespace cohort::broker
