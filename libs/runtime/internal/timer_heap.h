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
  std::uint64_t seq_ = 0;  // FIFO among equal deadlines
  std::size_t index_ = 0;
  TimerHeap* heap_ = nullptr;
};

// A binary min-heap of timer nodes ordered by (deadline, arming order), with O(log n)
// removal of any node. Single-threaded.
class TimerHeap {
 public:
  ~TimerHeap();
  bool empty() const { return nodes_.empty(); }
  std::size_t size() const { return nodes_.size(); }
  TimerNode* top() const { return nodes_.empty() ? nullptr : nodes_.front(); }

  // Arms (or re-arms) node at deadline.
  void Push(TimerNode* node, TimePoint deadline);
  // Disarms node; a no-op when it is not armed.
  void Remove(TimerNode* node);
  // Disarms and returns the earliest node whose deadline is <= now, or null.
  TimerNode* PopDue(TimePoint now);

 private:
  static bool Less(const TimerNode* a, const TimerNode* b) {
    return a->deadline_ < b->deadline_ || (a->deadline_ == b->deadline_ && a->seq_ < b->seq_);
  }
  void Place(std::size_t i, TimerNode* node) {
    nodes_[i] = node;
    node->index_ = i;
  }
  void SiftUp(std::size_t i);
  void SiftDown(std::size_t i);

  std::vector<TimerNode*> nodes_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace cohort::runtime::internal
