#pragma once

#include <atomic>
#include <concepts>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "libs/runtime/clock.h"
#include "libs/runtime/intrusive_list.h"
#include "libs/runtime/internal/mpsc_ring.h"
#include "libs/runtime/internal/posted_call.h"
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
  // inline in a bounded lock-free ring: one CAS, no lock and no allocation per post,
  // and a system call only for the first post after the loop went to sleep. When
  // kPostCapacity posts are waiting, Post() waits for the loop to catch up
  // (back-pressure). From the loop's own thread it is CallSoon().
  //
  // Once the loop can see fn, Post() touches the loop no more: the item may end the
  // loop's run and its owner may destroy it at once.
  template <typename F>
    requires std::invocable<std::decay_t<F>&>
  void Post(F&& fn) {
    if (InLoopThread()) {
      CallSoon(std::forward<F>(fn));
    } else {
      PostForeign(std::forward<F>(fn));
    }
  }
  void Post(std::coroutine_handle<> h) {
    if (InLoopThread()) {
      Schedule(h);
    } else {
      PostForeign([h] { h.resume(); });
    }
  }
  static constexpr std::size_t kPostCapacity = 8192;
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

  // Whether anything besides the running callback or task step is ready to run now:
  // runnables left in this turn or scheduled for the next (posts from other threads
  // and due timers not counted). A task that Yield()s while this holds resumes after
  // them, e.g. to send in one message what they produce.
  bool OthersReady() const { return !ready_.empty() || run_next_ < running_.size(); }
  // Whether a Post() from another thread is waiting to run, or being made (claimed,
  // not yet visible). Loop thread only. With !OthersReady(), false means the loop would go to sleep
  // after the running step, e.g. so a store may do a short blocking write inline
  // instead of handing it to another thread and back.
  bool PostsWaiting() const { return posted_.ClaimsPending(); }

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
  // Post() from a thread other than the loop's.
  template <typename F>
  void PostForeign(F&& fn) {
    using D = std::decay_t<F>;
    if constexpr (internal::PostedCall::kInline<D>) {
      PostEmplace([&fn](void* where) { internal::PostedCall::EmplaceInline(where, std::forward<F>(fn)); });
    } else {
      D* boxed = new D(std::forward<F>(fn));
      PostEmplace([boxed](void* where) { internal::PostedCall::EmplaceBoxed(where, boxed); });
    }
  }
  // Pushes the call emplace(where) constructs. The ring tells the one poster that
  // finds the loop asleep (see Poll()) to wake it; that poster counts itself in
  // posters_ before the call is visible (the loop cannot have run it yet, so it is
  // alive), and the destructor waits for it to finish the wake-up. Any other poster
  // touches the loop no more once its call is visible.
  template <typename Emplace>
  void PostEmplace(const Emplace& emplace) {
    auto pushed = posted_.TryEmplace(emplace, [this](bool asleep) {
      if (asleep) posters_.fetch_add(1, std::memory_order_acq_rel);
    });
    if (pushed == decltype(posted_)::Push::kPushedAsleep) {
      WakeAndRelease();
    } else if (pushed == decltype(posted_)::Push::kFull) {
      PostWhenRoom(emplace);
    }
  }
  // The ring is full: wait for room (counted in posters_ until the call is pushed).
  void PostWhenRoom(absl::FunctionRef<void(void*)> emplace);
  // Wakes the loop for a visible post, then drops the poster's count: its last touch.
  void WakeAndRelease() {
    Wake();
    posters_.fetch_sub(1, std::memory_order_acq_rel);
  }
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
  std::atomic<bool> active_{false};  // some thread is running the loop
  int epoll_fd_ = -1;

  std::vector<Runnable> ready_;
  std::vector<Runnable> running_;
  std::size_t run_next_ = 0;  // the next of running_ to run (OthersReady)
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

  // What posting threads read, apart from what the loop keeps writing, so that a
  // post does not pull a cache line from the loop's core. See Post() and Poll() for
  // the wake-up protocol.
  alignas(64) std::atomic<std::thread::id> owner_;
  int wake_fd_ = -1;
  internal::MpscRing<internal::PostedCall> posted_{kPostCapacity};
  // Posters waiting for room in a full ring or waking the loop: the destructor waits.
  alignas(64) std::atomic<int> posters_{0};
  std::atomic<bool> wake_pending_{false};
  std::atomic<bool> stop_requested_{false};
};

}  // namespace cohort::runtime
