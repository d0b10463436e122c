#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/intrusive_list.h"
#include "libs/runtime/internal/mpsc_ring.h"
#include "libs/runtime/internal/timer_heap.h"

namespace cohort::runtime {

namespace internal {
class TaskState;
}  // namespace internal

template <typename T>
class ExternalCompletion;

// Identifies a callback armed with CallAt/CallLater, for CancelTimer. Never 0, so 0
// can mean "no timer".
using TimerId = std::uint64_t;

// A single-threaded event loop (asyncio's loop): a FIFO ready queue, a timer heap and
// an epoll set with an eventfd for wake-ups from other threads.
//
// Threading: everything except Post(), Stop() and clock access is for the loop's own
// thread: the thread that constructed it until Run*() binds the thread running it.
// Misuse from another thread aborts (CheckInLoopThread), in opt builds too.
//
// Each iteration: drain cross-thread posts, fire due timers, poll file descriptors
// (blocking only when nothing is ready), then run the callbacks that were ready at its
// start; callbacks scheduled meanwhile run in the next iteration, so a task that yields
// in a loop cannot starve timers or I/O. Callbacks must not throw.
//
// Destroying the loop (asyncio.run's teardown) cancels every unfinished task and runs
// what is ready until they have unwound, without waiting for time to pass; frames of
// tasks still unfinished are then destroyed newest first, so a child never outlives
// its parent's frame. It must happen while no thread runs the loop, and waits for
// Post() calls in progress on other threads.
class EventLoop {
 public:
  explicit EventLoop(Clock* clock = SteadyClock::Get());
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // The loop running on this thread, or null.
  static EventLoop* Current();

  Clock& clock() const { return *clock_; }
  TimePoint Now() const { return clock_->Now(); }

  // ---- Loop thread only --------------------------------------------------------
  // Resumes `h` in the next batch. Allocates nothing.
  void Schedule(std::coroutine_handle<> h) { Schedule(&ResumeHandle, h.address()); }
  // Calls fn(arg) in the next batch. Allocates nothing.
  void Schedule(void (*fn)(void*), void* arg) { ready_.push_back(Runnable{fn, arg}); }
  // Calls fn in the next batch (asyncio's call_soon).
  void CallSoon(absl::AnyInvocable<void()> fn);
  // Calls fn once `when` has passed (call_at / call_later). Returns an id for CancelTimer.
  TimerId CallAt(TimePoint when, absl::AnyInvocable<void()> fn);
  TimerId CallLater(Duration delay, absl::AnyInvocable<void()> fn) {
    return CallAt(Now() + delay, std::move(fn));
  }
  // Cancels a pending CallAt/CallLater. Returns false if it already ran or was cancelled.
  bool CancelTimer(TimerId id);
  // Arms a caller-owned timer node (used by awaiters; see internal/timer_heap.h).
  void ArmTimer(internal::TimerNode* node, TimePoint deadline) { timers_.Push(node, deadline); }
  void DisarmTimer(internal::TimerNode* node) { timers_.Remove(node); }
  // Calls on_readable on the loop thread whenever fd is readable (level-triggered).
  absl::Status AddReader(int fd, absl::AnyInvocable<void()> on_readable);
  absl::Status RemoveReader(int fd);

  // ---- Any thread ------------------------------------------------------------------
  // Runs fn on the loop thread soon; posts from one thread run in the order posted.
  // Small callables (a coroutine handle, a lambda with two pointers) are stored
  // inline in a bounded lock-free ring: no lock and no allocation per post. When
  // kPostCapacity posts are waiting, Post() waits for the loop to catch up
  // (back-pressure). From the loop's own thread it is CallSoon().
  void Post(absl::AnyInvocable<void()> fn);
  static constexpr std::size_t kPostCapacity = 8192;
  void Post(std::coroutine_handle<> h) {
    if (InLoopThread()) {
      Schedule(h);
    } else {
      Post([h] { h.resume(); });
    }
  }
  // Makes Run() return after the current iteration.
  void Stop();

  // ---- Running ---------------------------------------------------------------------
  // Runs until Stop().
  void Run();
  // Runs everything ready now, and timers already due, without blocking; returns when
  // nothing is left to do at the current time. For tests with a ManualClock.
  void RunUntilIdle();
  // Runs iterations until done() returns true (checked after each iteration).
  template <typename Pred>
  void RunUntil(Pred done) {
    BindToCurrentThread();
    while (!done()) RunOnce(/*may_block=*/true);
    Unbind();
  }

  bool InLoopThread() const { return std::this_thread::get_id() == owner_.load(std::memory_order_relaxed); }
  void CheckInLoopThread() const;

  // Tasks not yet finished, for the loop's teardown (internal).
  void RegisterTask(internal::TaskState* task);

  // Armed timers (CallAt and awaiters' deadlines), not counting cancelled ones.
  std::size_t pending_timers() const { return timers_.size() - cancelled_timers_; }

 private:
  struct Runnable {
    void (*fn)(void*);
    void* arg;
  };
  struct CallbackSlot;
  template <typename T>
  friend class ExternalCompletion;

  // Work outside the loop that will come back through Post; counted by
  // ExternalCompletion only (see external_completion.h). While any is in flight the
  // teardown waits for it, and a manual clock with auto-advance does not jump ahead.
  void AddExternalWork() { ++external_work_; }
  void ReleaseExternalWork() { --external_work_; }

  static void ResumeHandle(void* address) { std::coroutine_handle<>::from_address(address).resume(); }
  void BindToCurrentThread();
  void Unbind();
  void RunOnce(bool may_block);
  // Polls fds; timeout_ns < 0 blocks until woken, 0 never blocks.
  void Poll(std::int64_t timeout_ns);
  void DrainPosted();
  // Waits briefly, without a syscall, for a post; true if one arrived.
  bool SpinForPost();
  void FireDueTimers();
  void Wake();
  CallbackSlot& Slot(std::uint32_t slot) const;
  // The slot of a timer still armed, or null.
  CallbackSlot* LiveSlot(TimerId id) const;
  void ReleaseSlot(TimerId id);
  void FireCallback(TimerId id);
  // Pops cancelled CallAt entries off the top, so the next deadline is a real one.
  void DropCancelledTop();

  Clock* const clock_;
  std::atomic<std::thread::id> owner_;  // read by posting threads
  std::atomic<bool> active_{false};  // some thread is running the loop
  int epoll_fd_ = -1;
  int wake_fd_ = -1;

  std::vector<Runnable> ready_;
  std::vector<Runnable> running_;
  internal::TimerHeap timers_;
  // CallAt callbacks, pooled: a TimerId is (generation << 32 | slot), so a stale id
  // never cancels the slot's next timer.
  static constexpr std::uint32_t kSlotChunk = 256;
  std::vector<std::unique_ptr<CallbackSlot[]>> slot_chunks_;
  // Cancelled CallAt entries still in timers_; swept once they are the majority.
  std::size_t cancelled_timers_ = 0;
  static constexpr std::size_t kSweepMin = 1024;
  std::vector<std::uint32_t> free_slots_;
  // Shared so that a callback may remove its own reader while it runs.
  absl::flat_hash_map<int, std::shared_ptr<absl::AnyInvocable<void()>>> readers_;
  std::uint32_t iterations_ = 0;
  bool posts_flowing_ = false;  // the last iteration ran posts
  static constexpr int kPostSpins = 512;
  int external_work_ = 0;
  IntrusiveList<internal::TaskState> tasks_;

  // Cross-thread posts: see Post() and Poll() for the wake-up protocol. The flags the
  // other threads read sit on their own cache lines.
  internal::MpscRing<absl::AnyInvocable<void()>> posted_{kPostCapacity};
  alignas(64) std::atomic<bool> sleeping_{false};
  // Post() calls in progress: the destructor waits for them. Apart from the flags the
  // loop writes, so that posting does not pull a line the loop keeps writing.
  alignas(64) std::atomic<int> posters_{0};
  alignas(64) std::atomic<bool> wake_pending_{false};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace cohort::runtime
