#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"

namespace cohort::broker {

// Which kinds an executor runs (Hello.kinds); empty means every kind.
using KindSet = absl::flat_hash_set<std::string>;

// The QUEUED jobs of one queue, in memory: rebuilt from the store's ready index at
// start, then kept in step with it. Dispatch order is highest priority first, FIFO
// (by queue sequence) within a priority, except that every `starvation_every`-th pop
// takes the oldest job whatever its priority, so a low-priority job waits a bounded
// number of dispatches under a flood of higher ones.
//
// Jobs are also kept per kind, so that a pop for an executor that runs some kinds only
// looks at the heads of those kinds: it takes the job that comes first in the order
// above among the jobs of its kinds, and never walks past jobs it cannot run. The
// starvation count is the queue's, whichever executor pops. Push, Remove and an
// every-kind Pop are O(log n); a Pop or HasFor for a KindSet is
// O(min(|kinds|, kinds queued) * log n).
class ReadyQueue {
 public:
  struct Entry {
    std::int32_t priority;
    std::int64_t sequence;  // the event sequence that queued the job
    std::string job_id;
    std::string kind;  // JobSpec.kind
  };

  // starvation_every: 0 disables the bound (strict priority).
  explicit ReadyQueue(int starvation_every) : starvation_every_(starvation_every) {}

  void Push(Entry entry);
  // Removes and returns the next job to dispatch, or nullopt when empty.
  std::optional<Entry> Pop();
  // The same among the jobs of `kinds` (empty: every kind); nullopt if there is none.
  std::optional<Entry> Pop(const KindSet& kinds);
  // True if a job of `kinds` (empty: every kind) is queued.
  bool HasFor(const KindSet& kinds) const;
  // Removes a job (cancelled while queued). False if it is not here.
  bool Remove(std::int32_t priority, std::int64_t sequence);

  std::size_t size() const { return by_priority_.size(); }
  bool empty() const { return by_priority_.empty(); }
  // Queued jobs per priority, highest first.
  std::vector<std::pair<std::int32_t, std::int64_t>> DepthByPriority() const;
  // Queued jobs per kind, in name order (kinds with none are absent).
  std::vector<std::pair<std::string, std::int64_t>> DepthByKind() const;
  // The oldest entry (lowest sequence), or null; valid until the queue next changes
  // (entries move within the B-tree when others are added or removed).
  const Entry* Oldest() const;

 private:
  // (-priority, sequence): begin() is the highest priority, oldest first.
  using Key = std::pair<std::int64_t, std::int64_t>;
  static Key KeyOf(std::int32_t priority, std::int64_t sequence) { return {-std::int64_t{priority}, sequence}; }
  // One kind's jobs, by the same order: never empty while in by_kind_.
  struct KindQueue {
    absl::btree_set<Key> by_priority;
    absl::btree_set<std::int64_t> by_age;  // sequences
  };

  // True if the next pop is the starvation bound's: the oldest job goes.
  bool OldestTurn();
  // Calls `f(kind_queue)` for each non-empty queue of a kind in `kinds` (not empty).
  template <typename F>
  void ForEachServed(const KindSet& kinds, F f) const;
  Entry Take(absl::btree_map<Key, Entry>::iterator it);

  const int starvation_every_;
  int pops_since_oldest_ = 0;
  // B-trees: a queue is appended to and popped from its ends, in sequence order, which
  // they do with a fraction of a node-per-entry tree's allocations.
  absl::btree_map<Key, Entry> by_priority_;
  absl::btree_map<std::int64_t, Key> by_age_;  // sequence -> key
  std::map<std::string, KindQueue, std::less<>> by_kind_;
};

}  // namespace cohort::broker
