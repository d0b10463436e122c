#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "libs/runtime/clock.h"

namespace cohort::runtime::internal {

class TimerHeap;

// A timer owned by its user (usually an awaiter in a coroutine frame, so arming a
// timer allocates nothing). OnTimer() runs on the loop thread once the deadline has
// passed. Destroying an armed node disarms it.
class TimerNode {
 public:
  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  virtual ~TimerNode();

  bool armed() const { return heap_ != nullptr; }
  TimePoint deadline() const { return deadline_; }

  virtual void OnTimer() = 0;

 private:
  friend class TimerHeap;
  TimePoint deadline_{};
  std::size_t index_ = 0;
  TimerHeap* heap_ = nullptr;
};

// A 4-ary min-heap of timer nodes ordered by (deadline, arming order), with O(log n)
// removal of any node. Entries carry their sort key, so sifting compares without
// touching the nodes, and a node's children share cache lines (half the depth of a
// binary heap). Single-threaded.
class TimerHeap {
 public:
  ~TimerHeap();
  bool empty() const { return nodes_.empty(); }
  std::size_t size() const { return nodes_.size(); }
  TimerNode* top() const { return nodes_.empty() ? nullptr : nodes_.front().node; }

  // Arms (or re-arms) node at deadline.
  void Push(TimerNode* node, TimePoint deadline);
  // Disarms node; a no-op when it is not armed.
  void Remove(TimerNode* node);
  // Disarms and returns the earliest node whose deadline is <= now, or null.
  TimerNode* PopDue(TimePoint now);

 private:
  struct Entry {
    TimePoint deadline;
    std::uint64_t seq;
    TimerNode* node;
    bool operator<(const Entry& o) const {
      return deadline < o.deadline || (deadline == o.deadline && seq < o.seq);
    }
  };
  void Place(std::size_t i, const Entry& e) {
    nodes_[i] = e;
    e.node->index_ = i;
  }
  void SiftUp(std::size_t i);
  void SiftDown(std::size_t i);

  static constexpr std::size_t kArity = 4;
  std::vector<Entry> nodes_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace cohort::runtime::internal
