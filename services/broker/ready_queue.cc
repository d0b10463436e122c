#include "services/broker/ready_queue.h"

namespace cohort::broker {

void ReadyQueue::Push(Entry entry) {
  // Sequences increase, so a new entry usually goes last (always by age, and by
  // priority when it has the lowest one queued): hinted at the end, an insertion
  // checks its neighbour instead of descending; a wrong hint costs one comparison.
  Key key = KeyOf(entry.priority, entry.sequence);
  KindQueue& kind = by_kind_[entry.kind];
  kind.by_priority.insert(kind.by_priority.end(), key);
  kind.by_age.insert(kind.by_age.end(), entry.sequence);
  by_age_.emplace_hint(by_age_.end(), entry.sequence, key);
  by_priority_.emplace_hint(by_priority_.end(), key, std::move(entry));
}

bool ReadyQueue::OldestTurn() {
  if (starvation_every_ <= 0 || ++pops_since_oldest_ < starvation_every_) return false;
  pops_since_oldest_ = 0;
  return true;
}

ReadyQueue::Entry ReadyQueue::Take(absl::btree_map<Key, Entry>::iterator it) {
  Entry entry = std::move(it->second);
  const Key key = it->first;
  auto kind = by_kind_.find(entry.kind);
  kind->second.by_priority.erase(key);
  kind->second.by_age.erase(entry.sequence);
  if (kind->second.by_priority.empty()) by_kind_.erase(kind);
  by_age_.erase(entry.sequence);
  by_priority_.erase(it);
  return entry;
}

std::optional<ReadyQueue::Entry> ReadyQueue::Pop() {
  if (by_priority_.empty()) return std::nullopt;
  auto it = by_priority_.begin();
  if (OldestTurn()) it = by_priority_.find(by_age_.begin()->second);
  return Take(it);
}

template <typename F>
void ReadyQueue::ForEachServed(const KindSet& kinds, F f) const {
  // Walk the smaller side: an executor's few kinds, or a queue's few kinds.
  if (kinds.size() <= by_kind_.size()) {
    for (const std::string& kind : kinds) {
      if (auto it = by_kind_.find(kind); it != by_kind_.end()) f(it->second);
    }
  } else {
    for (const auto& [kind, queue] : by_kind_) {
      if (kinds.contains(kind)) f(queue);
    }
  }
}

std::optional<ReadyQueue::Entry> ReadyQueue::Pop(const KindSet& kinds) {
  if (kinds.empty()) return Pop();
  if (!HasFor(kinds)) return std::nullopt;
  std::optional<Key> best;
  if (OldestTurn()) {
    std::optional<std::int64_t> oldest;
    ForEachServed(kinds, [&](const KindQueue& q) {
      if (!oldest || *q.by_age.begin() < *oldest) oldest = *q.by_age.begin();
    });
    best = by_age_.at(*oldest);
  } else {
    ForEachServed(kinds, [&](const KindQueue& q) {
      if (!best || *q.by_priority.begin() < *best) best = *q.by_priority.begin();
    });
  }
  return Take(by_priority_.find(*best));
}

bool ReadyQueue::HasFor(const KindSet& kinds) const {
  if (kinds.empty()) return !empty();
  bool found = false;
  ForEachServed(kinds, [&](const KindQueue&) { found = true; });
  return found;
}

bool ReadyQueue::Remove(std::int32_t priority, std::int64_t sequence) {
  auto it = by_priority_.find(KeyOf(priority, sequence));
  if (it == by_priority_.end()) return false;
  Take(it);
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

std::vector<std::pair<std::string, std::int64_t>> ReadyQueue::DepthByKind() const {
  std::vector<std::pair<std::string, std::int64_t>> depths;
  depths.reserve(by_kind_.size());
  for (const auto& [kind, queue] : by_kind_) depths.emplace_back(kind, static_cast<std::int64_t>(queue.by_age.size()));
  return depths;
}

const ReadyQueue::Entry* ReadyQueue::Oldest() const {
  if (by_age_.empty()) return nullptr;
  return &by_priority_.at(by_age_.begin()->second);
}

}  // namespace cohort::broker
