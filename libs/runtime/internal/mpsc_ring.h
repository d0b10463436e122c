#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace cohort::runtime::internal {

// A bounded multi-producer, single-consumer FIFO ring (Dmitry Vyukov's bounded queue:
// each slot carries a sequence number, so producers claim slots with one CAS and
// never lock, and values are constructed in place: no allocation per item).
// Items from one producer come out in the order it pushed them. Capacity must be a
// power of two.
template <typename T>
class MpscRing {
 public:
  explicit MpscRing(std::size_t capacity) : mask_(capacity - 1), slots_(new Slot[capacity]) {
    for (std::size_t i = 0; i < capacity; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }
  ~MpscRing() {
    while (TryPop([](T&) {})) {
    }
  }
  MpscRing(const MpscRing&) = delete;
  MpscRing& operator=(const MpscRing&) = delete;

  // Any thread. Moves from value and returns true, or returns false (value untouched)
  // when the ring is full.
  bool TryPush(T& value) {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    while (true) {
      Slot& slot = slots_[pos & mask_];
      std::uint64_t seq = slot.seq.load(std::memory_order_acquire);
      auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          new (slot.storage) T(std::move(value));
          slot.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Consumer thread only. Calls fn(item) on the oldest published item and removes it;
  // false if there is none.
  template <typename Fn>
  bool TryPop(Fn&& fn) {
    Slot& slot = slots_[head_ & mask_];
    if (slot.seq.load(std::memory_order_acquire) != head_ + 1) return false;
    T* item = std::launder(reinterpret_cast<T*>(slot.storage));
    fn(*item);
    item->~T();
    slot.seq.store(head_ + mask_ + 1, std::memory_order_release);
    ++head_;
    return true;
  }

  // Consumer thread only: true if no published item is waiting.
  bool Empty() const {
    return slots_[head_ & mask_].seq.load(std::memory_order_acquire) != head_ + 1;
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq;
    alignas(T) unsigned char storage[sizeof(T)];
  };

  const std::uint64_t mask_;
  std::unique_ptr<Slot[]> slots_;
  alignas(64) std::atomic<std::uint64_t> tail_{0};  // producers
  alignas(64) std::uint64_t head_ = 0;              // the consumer
};

}  // namespace cohort::runtime::internal
