#include "libs/runtime/internal/timer_heap.h"

namespace cohort::runtime::internal {

TimerNode::~TimerNode() {
  if (heap_ != nullptr) heap_->Remove(this);
}

TimerHeap::~TimerHeap() {
  for (TimerNode* node : nodes_) node->heap_ = nullptr;
}

void TimerHeap::Push(TimerNode* node, TimePoint deadline) {
  Remove(node);
  node->deadline_ = deadline;
  node->seq_ = next_seq_++;
  node->heap_ = this;
  nodes_.push_back(node);
  node->index_ = nodes_.size() - 1;
  SiftUp(node->index_);
}

void TimerHeap::Remove(TimerNode* node) {
  if (node->heap_ != this) return;
  std::size_t i = node->index_;
  node->heap_ = nullptr;
  TimerNode* last = nodes_.back();
  nodes_.pop_back();
  if (i == nodes_.size()) return;
  Place(i, last);
  SiftUp(i);
  SiftDown(last->index_);
}

TimerNode* TimerHeap::PopDue(TimePoint now) {
  if (nodes_.empty() || nodes_.front()->deadline_ > now) return nullptr;
  TimerNode* node = nodes_.front();
  Remove(node);
  return node;
}

void TimerHeap::SiftUp(std::size_t i) {
  TimerNode* node = nodes_[i];
  while (i > 0) {
    std::size_t parent = (i - 1) / 2;
    if (!Less(node, nodes_[parent])) break;
    Place(i, nodes_[parent]);
    i = parent;
  }
  Place(i, node);
}

void TimerHeap::SiftDown(std::size_t i) {
  TimerNode* node = nodes_[i];
  const std::size_t n = nodes_.size();
  while (true) {
    std::size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && Less(nodes_[child + 1], nodes_[child])) ++child;
    if (!Less(nodes_[child], node)) break;
    Place(i, nodes_[child]);
    i = child;
  }
  Place(i, node);
}

}  // namespace cohort::runtime::internal
