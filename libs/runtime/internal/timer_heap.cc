#include "libs/runtime/internal/timer_heap.h"

#include <algorithm>
#include <bit>
#include <utility>

namespace cohort::runtime::internal {

TimerNode::~TimerNode() {
  if (heap_ != nullptr) heap_->Remove(this);
}

TimerHeap::~TimerHeap() {
  auto detach = [](const Entry& e) {
    if (!e.is_node()) return;
    e.node()->heap_ = nullptr;
    e.node()->in_run_ = false;
  };
  for (const Entry& e : nodes_) detach(e);
  for (std::size_t i = run_pos_; i < run_.size(); ++i) detach(run_[i]);
}

DueTimer TimerHeap::top() const {
  if (RunFirst()) return run_[run_pos_].due();
  return nodes_.empty() ? DueTimer{} : nodes_.front().due();
}

void TimerHeap::Push(TimerNode* node, TimePoint deadline) {
  Remove(node);
  node->heap_ = this;
  PushEntry(Entry{deadline, next_seq_++, reinterpret_cast<std::uintptr_t>(node)});
}

void TimerHeap::PushCookie(std::uint64_t cookie, TimePoint deadline) {
  PushEntry(Entry{deadline, next_seq_++, static_cast<std::uintptr_t>(cookie << 1 | 1)});
}

void TimerHeap::PushEntry(const Entry& e) {
  nodes_.push_back(e);
  if (e.is_node()) e.node()->index_ = static_cast<std::uint32_t>(nodes_.size() - 1);
  SiftUp(nodes_.size() - 1);
}

void TimerHeap::Remove(TimerNode* node) {
  if (node->heap_ != this) return;
  node->heap_ = nullptr;
  if (node->in_run_) {
    node->in_run_ = false;
    run_[node->index_].payload = kRemoved;
    --run_live_;
    SkipRemoved();
    return;
  }
  RemoveAt(node->index_);
}

void TimerHeap::RemoveAt(std::size_t i) {
  Entry last = nodes_.back();
  nodes_.pop_back();
  if (i == nodes_.size()) return;
  Place(i, last);
  SiftUp(i);
  SiftDown(i);
}

DueTimer TimerHeap::PopDue(TimePoint now) {
  if (RunFirst()) {
    if (run_[run_pos_].deadline > now) return {};
    return PopRunFront();
  }
  if (nodes_.empty() || nodes_.front().deadline > now) {
    streak_ = 0;
    return {};
  }
  if (++streak_ >= kRunMinStreak && streak_ * kRunShare >= nodes_.size()) {
    ExtractDueRun(now);
    return PopRunFront();
  }
  return PopHeapTop();
}

void TimerHeap::PopTop() {
  if (RunFirst()) {
    PopRunFront();
  } else {
    PopHeapTop();
  }
}

DueTimer TimerHeap::PopRunFront() {
  Entry e = run_[run_pos_];
  run_[run_pos_++].payload = kRemoved;
  --run_live_;
  SkipRemoved();
  if (e.is_node()) {
    e.node()->heap_ = nullptr;
    e.node()->in_run_ = false;
  }
  return e.due();
}

void TimerHeap::SkipRemoved() {
  while (run_pos_ < run_.size() && run_[run_pos_].payload == kRemoved) ++run_pos_;
  if (run_pos_ == run_.size()) {
    run_.clear();
    run_pos_ = 0;
  }
}

void TimerHeap::ExtractDueRun(TimePoint now) {
  streak_ = 0;
  // Called only when the run is used up, so run_ is empty. Due entries first; then
  // whichever side is smaller is copied, so a burst moves no more memory than it must.
  auto not_due = std::partition(nodes_.begin(), nodes_.end(), [now](const Entry& e) { return e.deadline <= now; });
  const auto due = static_cast<std::size_t>(not_due - nodes_.begin());
  if (due * 2 >= nodes_.size()) {
    run_.assign(not_due, nodes_.end());  // run_ holds what stays in the heap, for now
    nodes_.resize(due);
    std::swap(run_, nodes_);
  } else {
    run_.assign(nodes_.begin(), not_due);
    nodes_.erase(nodes_.begin(), not_due);
  }
  SortRun();
  run_pos_ = 0;
  run_live_ = run_.size();
  for (std::size_t i = 0; i < run_.size(); ++i) {
    if (!run_[i].is_node()) continue;
    run_[i].node()->in_run_ = true;
    run_[i].node()->index_ = static_cast<std::uint32_t>(i);
  }
  Heapify();
}

void TimerHeap::SortRun() {
  // A burst spanning a short time (the common case: timeouts armed close together)
  // sorts in a few linear passes over the deadlines' offsets from the earliest, 11
  // bits a pass (LSD radix sort: no comparisons to mispredict); otherwise, or when it
  // is small, a comparison sort.
  constexpr int kBits = 11;
  constexpr int kMaxPasses = 3;
  constexpr std::size_t kRadixMin = 2048;
  const std::size_t n = run_.size();
  if (n < kRadixMin) {
    std::sort(run_.begin(), run_.end());
    return;
  }
  auto [lo, hi] = std::minmax_element(run_.begin(), run_.end(),
                                      [](const Entry& a, const Entry& b) { return a.deadline < b.deadline; });
  const auto base = static_cast<std::uint64_t>(lo->deadline.time_since_epoch().count());
  const std::uint64_t span = static_cast<std::uint64_t>(hi->deadline.time_since_epoch().count()) - base;
  const int passes = (std::bit_width(span) + kBits - 1) / kBits;
  if (passes > kMaxPasses) {
    std::sort(run_.begin(), run_.end());
    return;
  }
  scratch_.resize(n);
  auto key = [base](const Entry& e) { return static_cast<std::uint64_t>(e.deadline.time_since_epoch().count()) - base; };
  for (int pass = 0; pass < passes; ++pass) {
    const int shift = pass * kBits;
    std::size_t start[std::size_t{1} << kBits] = {};
    for (const Entry& e : run_) ++start[(key(e) >> shift) & ((1u << kBits) - 1)];
    std::size_t sum = 0;
    for (std::size_t& c : start) sum += std::exchange(c, sum);
    for (const Entry& e : run_) scratch_[start[(key(e) >> shift) & ((1u << kBits) - 1)]++] = e;
    std::swap(run_, scratch_);
  }
  // Stable by deadline now; equal deadlines still need arming order.
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    while (j < n && run_[j].deadline == run_[i].deadline) ++j;
    if (j - i > 1) std::sort(run_.begin() + i, run_.begin() + j);
    i = j;
  }
}

void TimerHeap::RemoveCookiesIf(absl::FunctionRef<bool(std::uint64_t)> cancelled) {
  auto removed = [&](const Entry& e) { return !e.is_node() && e.payload != kRemoved && cancelled(e.payload >> 1); };
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), removed), nodes_.end());
  Heapify();
  for (std::size_t i = run_pos_; i < run_.size(); ++i) {
    if (removed(run_[i])) {
      run_[i].payload = kRemoved;
      --run_live_;
    }
  }
  SkipRemoved();
}

void TimerHeap::Heapify() {
  // Floyd's construction: O(n).
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].is_node()) nodes_[i].node()->index_ = static_cast<std::uint32_t>(i);
  }
  if (nodes_.size() > 1) {
    for (std::size_t i = (nodes_.size() - 2) / kArity + 1; i-- > 0;) SiftDown(i);
  }
}

DueTimer TimerHeap::PopHeapTop() {
  Entry top = nodes_.front();
  if (top.is_node()) top.node()->heap_ = nullptr;
  Entry last = nodes_.back();
  nodes_.pop_back();
  const std::size_t n = nodes_.size();
  if (n == 0) return top.due();
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
  return top.due();
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
