#include "services/broker/ready_queue.h"

namespace cohort::broker {

void ReadyQueue::Push(Entry entry) {
  Key key = KeyOf(entry.priority, entry.sequence);
  by_age_.emplace(entry.sequence, key);
  by_priority_.emplace(key, std::move(entry));
}

std::optional<ReadyQueue::Entry> ReadyQueue::Pop() {
  if (by_priority_.empty()) return std::nullopt;
  auto it = by_priority_.begin();
  if (starvation_every_ > 0 && ++pops_since_oldest_ >= starvation_every_) {
    pops_since_oldest_ = 0;
    it = by_priority_.find(by_age_.begin()->second);
  }
  Entry entry = std::move(it->second);
  by_age_.erase(entry.sequence);
  by_priority_.erase(it);
  return entry;
}

bool ReadyQueue::Remove(std::int32_t priority, std::int64_t sequence) {
  if (by_priority_.erase(KeyOf(priority, sequence)) == 0) return false;
  by_age_.erase(sequence);
  return true;
}

std::vector<std::pair<std::int32_t, std::int64_t>> ReadyQueue::DepthByPriority() const {
  std::vector<std::pair<std::int32_t, std::int64_t>> depths;
  for (const auto& [key, entry] : by_priority_) {
    if (depths.empty() || depths.back().first != entry.priority) depths.emplace_back(entry.priority, 0);
    ++depths.back().second;
  }
  return depths;
}

const ReadyQueue::Entry* ReadyQueue::Oldest() const {
  if (by_age_.empty()) return nullptr;
  return &by_priority_.at(by_age_.begin()->second);
}

}  // namespace cohort::broker
