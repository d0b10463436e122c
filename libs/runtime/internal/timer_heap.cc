#include "libs/runtime/internal/timer_heap.h"

#include <algorithm>

namespace cohort::runtime::internal {

TimerNode::~TimerNode() {
  if (heap_ != nullptr) heap_->Remove(this);
}

TimerHeap::~TimerHeap() {
  for (const Entry& e : nodes_) e.node->heap_ = nullptr;
}

void TimerHeap::Push(TimerNode* node, TimePoint deadline) {
  Remove(node);
  node->deadline_ = deadline;
  node->heap_ = this;
  nodes_.push_back(Entry{deadline, next_seq_++, node});
  SiftUp(nodes_.size() - 1);
}

void TimerHeap::Remove(TimerNode* node) {
  if (node->heap_ != this) return;
  std::size_t i = node->index_;
  node->heap_ = nullptr;
  Entry last = nodes_.back();
  nodes_.pop_back();
  if (i == nodes_.size()) return;
  Place(i, last);
  SiftUp(i);
  SiftDown(last.node->index_);
}

TimerNode* TimerHeap::PopDue(TimePoint now) {
  if (nodes_.empty() || nodes_.front().deadline > now) return nullptr;
  TimerNode* node = nodes_.front().node;
  node->heap_ = nullptr;
  Entry last = nodes_.back();
  nodes_.pop_back();
  const std::size_t n = nodes_.size();
  if (n == 0) return node;
  // Floyd's bottom-up pop: move the hole at the root down to a leaf along the
  // smallest children, then sift the last entry up from there. It saves the
  // unpredictable comparison with `last` on every level, and `last` (a leaf)
  // rarely climbs.
  std::size_t hole = 0;
  while (true) {
    std::size_t first = kArity * hole + 1;
    if (first >= n) break;
    std::size_t child = first;
    std::size_t end = std::min(first + kArity, n);
    for (std::size_t c = first + 1; c < end; ++c) {
      if (nodes_[c] < nodes_[child]) child = c;
    }
    Place(hole, nodes_[child]);
    hole = child;
  }
  Place(hole, last);
  SiftUp(hole);
  return node;
}

void TimerHeap::SiftUp(std::size_t i) {
  Entry e = nodes_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / kArity;
    if (!(e < nodes_[parent])) break;
    Place(i, nodes_[parent]);
    i = parent;
  }
  Place(i, e);
}

void TimerHeap::SiftDown(std::size_t i) {
  Entry e = nodes_[i];
  const std::size_t n = nodes_.size();
  while (true) {
    std::size_t first = kArity * i + 1;
    if (first >= n) break;
    std::size_t child = first;
    std::size_t end = std::min(first + kArity, n);
    for (std::size_t c = first + 1; c < end; ++c) {
      if (nodes_[c] < nodes_[child]) child = c;
    }
    if (!(nodes_[child] < e)) break;
    Place(i, nodes_[child]);
    i = child;
  }
  Place(i, e);
}

}  // namespace cohort::runtime::internal
