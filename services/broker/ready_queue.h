#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cohort::broker {

// The QUEUED jobs of one queue, in memory: rebuilt from the store's ready index at
// start, then kept in step with it. Dispatch order is highest priority first, FIFO
// (by queue sequence) within a priority, except that every `starvation_every`-th pop
// takes the oldest job whatever its priority, so a low-priority job waits a bounded
// number of dispatches under a flood of higher ones. All operations O(log n).
class ReadyQueue {
 public:
  struct Entry {
    std::int32_t priority;
    std::int64_t sequence;  // the event sequence that queued the job
    std::string job_id;
  };

  // starvation_every: 0 disables the bound (strict priority).
  explicit ReadyQueue(int starvation_every) : starvation_every_(starvation_every) {}

  void Push(Entry entry);
  // Removes and returns the next job to dispatch, or nullopt when empty.
  std::optional<Entry> Pop();
  // Removes a job (cancelled while queued). False if it is not here.
  bool Remove(std::int32_t priority, std::int64_t sequence);

  std::size_t size() const { return by_priority_.size(); }
  bool empty() const { return by_priority_.empty(); }
  // Queued jobs per priority, highest first.
  std::vector<std::pair<std::int32_t, std::int64_t>> DepthByPriority() const;
  // The oldest entry (lowest sequence), or null.
  const Entry* Oldest() const;

 private:
  // (-priority, sequence): begin() is the highest priority, oldest first.
  using Key = std::pair<std::int64_t, std::int64_t>;
  static Key KeyOf(std::int32_t priority, std::int64_t sequence) { return {-std::int64_t{priority}, sequence}; }

  const int starvation_every_;
  int pops_since_oldest_ = 0;
  std::map<Key, Entry> by_priority_;
  std::map<std::int64_t, Key> by_age_;  // sequence -> key
};

}  // namespace cohort::broker
