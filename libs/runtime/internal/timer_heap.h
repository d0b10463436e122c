#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/function_ref.h"
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

  virtual void OnTimer() = 0;

 private:
  friend class TimerHeap;
  TimerHeap* heap_ = nullptr;
  std::uint32_t index_ = 0;  // in the heap, or in the due run when in_run_
  bool in_run_ = false;
};

// What fell due: a node (already disarmed), or the cookie of a cookie timer.
struct DueTimer {
  TimerNode* node = nullptr;
  std::uint64_t cookie = 0;
  explicit operator bool() const { return node != nullptr || cookie != 0; }
};

// A 4-ary min-heap of timers ordered by (deadline, arming order). Two kinds of entry:
// nodes (removable in O(log n), used by awaiters) and cookies (a non-zero 63-bit
// number the owner maps to a callback; never removed: the owner ignores a cancelled
// cookie when it falls due, and RemoveCookiesIf() sweeps them in bulk). Entries carry
// their sort key, so sifting compares without touching the nodes, and a node's
// children share cache lines (half the depth of a binary heap).
//
// When a large share of the heap falls due at once (a burst of timeouts), popping
// one by one would cost O(log n) cache misses each: after a streak of pops, PopDue
// moves every due entry into a sorted run in one linear pass and a sort (a radix sort
// on the deadline when the burst spans a short time), and then merges that run with
// the heap, so the order is unchanged, including for timers armed while the run is
// being fired. Single-threaded.
class TimerHeap {
 public:
  ~TimerHeap();
  bool empty() const { return nodes_.empty() && run_live_ == 0; }
  std::size_t size() const { return nodes_.size() + run_live_; }
  // The earliest deadline. Requires !empty().
  TimePoint next_deadline() const { return RunFirst() ? run_[run_pos_].deadline : nodes_.front().deadline; }
  // The earliest entry, without removing it; empty when there is none.
  DueTimer top() const;

  // Arms (or re-arms) node at deadline.
  void Push(TimerNode* node, TimePoint deadline);
  // Arms a cookie timer (cookie < 2^63, not 0).
  void PushCookie(std::uint64_t cookie, TimePoint deadline);
  // Disarms node; a no-op when it is not armed.
  void Remove(TimerNode* node);
  // Removes and returns the earliest entry whose deadline is <= now (a node is
  // disarmed first), or an empty DueTimer.
  DueTimer PopDue(TimePoint now);
  // Removes the earliest entry. Requires !empty().
  void PopTop();
  // The cookie of the entry `ahead` places behind the next one in the current due run,
  // or 0 (none, or a node): lets the owner prefetch what it will fire soon.
  std::uint64_t RunCookieAhead(std::size_t ahead) const {
    std::size_t i = run_pos_ + ahead;
    if (i >= run_.size() || run_[i].is_node() || run_[i].payload == kRemoved) return 0;
    return run_[i].payload >> 1;
  }
  // Removes every cookie entry for which cancelled(cookie) is true. O(n).
  void RemoveCookiesIf(absl::FunctionRef<bool(std::uint64_t)> cancelled);

 private:
  struct Entry {
    TimePoint deadline;
    std::uint64_t seq;
    std::uintptr_t payload;  // a TimerNode*, or cookie << 1 | 1
    bool operator<(const Entry& o) const {
      return deadline < o.deadline || (deadline == o.deadline && seq < o.seq);
    }
    bool is_node() const { return (payload & 1) == 0; }
    TimerNode* node() const { return reinterpret_cast<TimerNode*>(payload); }
    DueTimer due() const { return is_node() ? DueTimer{node(), 0} : DueTimer{nullptr, payload >> 1}; }
  };
  void Place(std::size_t i, const Entry& e) {
    nodes_[i] = e;
    if (e.is_node()) e.node()->index_ = static_cast<std::uint32_t>(i);
  }
  void PushEntry(const Entry& e);
  void RemoveAt(std::size_t i);
  void SiftUp(std::size_t i);
  void SiftDown(std::size_t i);
  void Heapify();
  DueTimer PopHeapTop();
  DueTimer PopRunFront();
  // Moves every entry due at `now` from the heap into run_, sorted.
  void ExtractDueRun(TimePoint now);
  // Sorts run_ by (deadline, arming order).
  void SortRun();
  // Advances run_pos_ past removed entries; clears the run once it is used up.
  void SkipRemoved();
  bool RunFirst() const {
    return run_live_ > 0 && (nodes_.empty() || run_[run_pos_] < nodes_.front());
  }

  static constexpr std::size_t kArity = 4;
  // A streak of this many pops, and at least 1/kRunShare of the heap, turns the rest
  // of the due entries into a run.
  static constexpr std::size_t kRunMinStreak = 64;
  static constexpr std::size_t kRunShare = 32;
  static constexpr std::uintptr_t kRemoved = 1;  // a run entry removed (cookie 0)
  std::vector<Entry> nodes_;
  std::uint64_t next_seq_ = 0;
  std::vector<Entry> run_;  // sorted
  std::vector<Entry> scratch_;  // SortRun's
  std::size_t run_pos_ = 0;
  std::size_t run_live_ = 0;
  std::size_t streak_ = 0;  // heap pops since PopDue last found nothing due
};

}  // namespace cohort::runtime::internal
