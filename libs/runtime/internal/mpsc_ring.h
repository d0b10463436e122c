#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

namespace cohort::runtime::internal {

// A bounded multi-producer, single-consumer FIFO ring with a sleep flag for the
// consumer, for cross-thread posts to an event loop.
//
// Producers claim a position with one CAS on the tail and construct the item in
// its slot (no lock, no allocation, no move), then publish it by storing the slot's sequence
// number. Items from one producer come out in the order it pushed them.
//
// The consumer never writes to the slots: it publishes how far it has consumed once
// per batch, and producers compare their position with that to detect a full ring. So
// a slot's cache line moves from the producer to the consumer and back only once per
// lap, not on every item.
//
// Sleeping without lost wake-ups: the consumer sets the tail's low bit (TrySleep) only
// when every claimed item has been consumed; the producer whose claim clears that bit
// is told so (TryEmplace returns kPushedAsleep) and must wake the consumer. It is told
// first through before_publish, while the consumer cannot yet have run its item, so
// the owner can pin itself alive (see EventLoop's posters_) for the wake-up that
// follows the publication.
//
// Capacity must be a power of two.
template <typename T>
class MpscRing {
 public:
  explicit MpscRing(std::size_t capacity)
      : slots_(new Slot[capacity]), mask_(capacity - 1), consumer_slots_(slots_.get()), consumer_mask_(mask_) {}
  // Destroys the items not consumed, without running them. Requires no claim in flight.
  ~MpscRing() { DropPublished(); }
  MpscRing(const MpscRing&) = delete;
  MpscRing& operator=(const MpscRing&) = delete;

  // ---- Producers (any thread) ------------------------------------------------------
  enum class Push { kFull, kPushed, kPushedAsleep };
  // Claims a slot and calls emplace(where) to construct a T there (it must not throw);
  // or returns kFull, without calling emplace, when the ring is full. Calls
  // before_publish(consumer_asleep) after the item is constructed and before the
  // consumer can see it. consumer_asleep (and kPushedAsleep) is true for exactly one
  // producer per TrySleep, which must wake the consumer.
  template <typename Emplace, typename BeforePublish>
  Push TryEmplace(Emplace&& emplace, BeforePublish&& before_publish) {
    std::uint64_t tail = tail_.load(std::memory_order_relaxed);
    std::uint64_t pos;
    while (true) {
      pos = tail >> 1;
      if (pos - released_.load(std::memory_order_acquire) > mask_) return Push::kFull;
      // Clears the sleep bit: if it was set, this producer wakes the consumer.
      if (tail_.compare_exchange_weak(tail, (pos + 1) << 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        break;
      }
    }
    Slot& slot = slots_[pos & mask_];
    emplace(static_cast<void*>(slot.storage));
    const bool asleep = (tail & 1) != 0;
    before_publish(asleep);
    slot.seq.store(pos + 1, std::memory_order_release);
    return asleep ? Push::kPushedAsleep : Push::kPushed;
  }

  // ---- Consumer (one thread) ----------------------------------------------------------
  // True if no published item is waiting at the head.
  bool Empty() const { return !Published(head_); }

  // Calls fn(item) on up to max published items, oldest first, destroying each after
  // its call. Returns how many it consumed.
  template <typename Fn>
  std::size_t Drain(std::size_t max, Fn&& fn) {
    std::size_t n = 0;
    while (n < max && Published(head_)) {
      T* item = Item(head_);
      fn(*item);
      item->~T();
      ++head_;
      // Give room back while a long batch runs, so producers need not wait for all of it.
      if ((++n & (kReleaseEvery - 1)) == 0) released_.store(head_, std::memory_order_release);
    }
    if (n != 0) released_.store(head_, std::memory_order_release);
    return n;
  }

  // Destroys every published item at the head without running it.
  void DropPublished() {
    Drain(static_cast<std::size_t>(-1), [](T&) {});
  }

  // True if a producer has claimed a position not yet consumed (published or not).
  bool ClaimsPending() const { return (tail_.load(std::memory_order_acquire) >> 1) != head_; }

  // Announces that the consumer is about to sleep: true if nothing is pending, and
  // then the next producer to claim a position is told to wake the consumer. False if
  // an item is pending (perhaps not yet published): do not sleep.
  bool TrySleep() {
    std::uint64_t tail = head_ << 1;
    return tail_.compare_exchange_strong(tail, tail | 1, std::memory_order_seq_cst, std::memory_order_relaxed);
  }
  // After a sleep: withdraws the announcement if no producer took it.
  void Awake() {
    if ((tail_.load(std::memory_order_relaxed) & 1) != 0) tail_.fetch_and(~std::uint64_t{1}, std::memory_order_relaxed);
  }

 private:
  struct Slot {
    std::atomic<std::uint64_t> seq{0};  // pos + 1 once the item at pos is published
    alignas(T) unsigned char storage[sizeof(T)];
  };
  static constexpr std::uint64_t kReleaseEvery = 256;

  bool Published(std::uint64_t pos) const {
    return consumer_slots_[pos & consumer_mask_].seq.load(std::memory_order_acquire) == pos + 1;
  }
  T* Item(std::uint64_t pos) const {
    return std::launder(reinterpret_cast<T*>(consumer_slots_[pos & consumer_mask_].storage));
  }

  // What producers use, on one line: the tail (position << 1 | consumer asleep).
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::unique_ptr<Slot[]> slots_;
  const std::uint64_t mask_;
  // Written by the consumer once per batch, read by producers.
  alignas(64) std::atomic<std::uint64_t> released_{0};
  // The consumer's own line.
  alignas(64) Slot* const consumer_slots_;
  const std::uint64_t consumer_mask_;
  std::uint64_t head_ = 0;
};

}  // namespace cohort::runtime::internal
