#pragma once

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "libs/runtime/internal/waiter.h"

namespace cohort::runtime {
namespace internal {

// Storage policies: which item Get() returns.
template <typename T>
class FifoStorage {
 public:
  void Push(T item) { items_.push_back(std::move(item)); }
  T Pop() {
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  std::size_t size() const { return items_.size(); }

 private:
  std::deque<T> items_;
};

template <typename T>
class LifoStorage {
 public:
  void Push(T item) { items_.push_back(std::move(item)); }
  T Pop() {
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const { return items_.size(); }

 private:
  std::vector<T> items_;
};

// Smallest first by Compare (asyncio.PriorityQueue); equal items in no set order.
template <typename T, typename Compare>
class PriorityStorage {
 public:
  void Push(T item) {
    items_.push_back(std::move(item));
    std::push_heap(items_.begin(), items_.end(), Greater{});
  }
  T Pop() {
    std::pop_heap(items_.begin(), items_.end(), Greater{});
    T item = std::move(items_.back());
    items_.pop_back();
    return item;
  }
  std::size_t size() const { return items_.size(); }

 private:
  struct Greater {
    bool operator()(const T& a, const T& b) const { return Compare{}(b, a); }
  };
  std::vector<T> items_;
};

}  // namespace internal

// asyncio.Queue and its variants, for tasks of one loop.
//
// `maxsize` > 0 bounds the queue: Put() waits while it is full (back-pressure) and
// PutNowait() fails with RESOURCE_EXHAUSTED; 0 means unbounded. Get() waits while it
// is empty; GetNowait() fails with FAILED_PRECONDITION. Items are handed directly to
// the longest-waiting getter, and a waiting putter's item enters as soon as there is
// room, in FIFO order of the waiters: nobody barges, nothing is lost when a waiter is
// cancelled (a cancelled waiter has neither given nor taken an item).
// TaskDone()/Join() count unfinished items as asyncio does. Loop thread only.
template <typename T, typename Storage>
class BasicQueue {
 public:
  explicit BasicQueue(std::size_t maxsize = 0) : maxsize_(maxsize) {}

  std::size_t Size() const { return storage_.size(); }
  std::size_t maxsize() const { return maxsize_; }
  bool Empty() const { return storage_.size() == 0; }
  bool Full() const { return maxsize_ > 0 && storage_.size() >= maxsize_; }

  // `co_await q.Put(item)`: waits while the queue is full. Cancellable while waiting.
  auto Put(T item) { return PutAwaiter(this, std::move(item)); }
  // `T item = co_await q.Get()`: waits while the queue is empty. Cancellable.
  auto Get() { return GetAwaiter(this); }

  absl::Status PutNowait(T item) {
    if (Full()) {
      return absl::ResourceExhaustedError(absl::StrCat("queue is full (maxsize ", maxsize_, ")"));
    }
    Admit(std::move(item));
    return absl::OkStatus();
  }
  absl::StatusOr<T> GetNowait() {
    if (Empty()) return absl::FailedPreconditionError("queue is empty");
    return Take();
  }

  // Marks one item taken by Get() as processed. Fails if called more times than
  // items were put.
  absl::Status TaskDone() {
    if (unfinished_ == 0) return absl::FailedPreconditionError("TaskDone() called too many times");
    if (--unfinished_ == 0) {
      while (internal::Waiter* w = joiners_.PopFront()) w->Wake();
    }
    return absl::OkStatus();
  }
  // `co_await q.Join()`: waits until every item put has been marked TaskDone().
  auto Join() { return JoinAwaiter(this); }

 private:
  struct GetWaiter : internal::Waiter {
    std::optional<T> item;
  };
  struct PutWaiter : internal::Waiter {
    std::optional<T> item;
  };

  // A new item: straight to the longest-waiting getter, else into storage.
  void Admit(T item) {
    ++unfinished_;
    if (auto* g = static_cast<GetWaiter*>(getters_.PopFront())) {
      g->item.emplace(std::move(item));
      g->Wake();
      return;
    }
    storage_.Push(std::move(item));
  }
  // Takes the next item and lets the longest-waiting putter in.
  T Take() {
    T item = storage_.Pop();
    if (auto* p = static_cast<PutWaiter*>(putters_.PopFront())) {
      ++unfinished_;
      storage_.Push(std::move(*p->item));
      p->Wake();
    }
    return item;
  }

  struct GetAwaiter {
    BasicQueue* q;
    GetWaiter waiter;
    explicit GetAwaiter(BasicQueue* queue) : q(queue) {}
    bool await_ready() noexcept {
      if (q->Empty()) return false;
      waiter.item.emplace(q->Take());
      return true;
    }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, q->getters_);
    }
    T await_resume() {
      waiter.ThrowIfCancelled();
      return std::move(*waiter.item);
    }
  };
  struct PutAwaiter {
    BasicQueue* q;
    PutWaiter waiter;
    PutAwaiter(BasicQueue* queue, T item) : q(queue) { waiter.item.emplace(std::move(item)); }
    bool await_ready() noexcept {
      if (q->Full()) return false;
      q->Admit(std::move(*waiter.item));
      return true;
    }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, q->putters_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };
  struct JoinAwaiter {
    BasicQueue* q;
    internal::Waiter waiter;
    explicit JoinAwaiter(BasicQueue* queue) : q(queue) {}
    bool await_ready() const noexcept { return q->unfinished_ == 0; }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, q->joiners_);
    }
    void await_resume() const { waiter.ThrowIfCancelled(); }
  };

  const std::size_t maxsize_;
  Storage storage_;
  std::size_t unfinished_ = 0;
  IntrusiveList<internal::Waiter> getters_;
  IntrusiveList<internal::Waiter> putters_;
  IntrusiveList<internal::Waiter> joiners_;
};

// First in, first out.
template <typename T>
using Queue = BasicQueue<T, internal::FifoStorage<T>>;
// Last in, first out.
template <typename T>
using LifoQueue = BasicQueue<T, internal::LifoStorage<T>>;
// Smallest item first (by Compare, default operator<).
template <typename T, typename Compare = std::less<T>>
using PriorityQueue = BasicQueue<T, internal::PriorityStorage<T, Compare>>;

}  // namespace cohort::runtime
