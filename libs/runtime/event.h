#pragma once

#include <coroutine>
#include <optional>

#include "libs/runtime/clock.h"
#include "libs/runtime/internal/waiter.h"

namespace cohort::runtime {

// asyncio.Event: a flag that tasks wait on. Set() wakes every waiter; waiting on a set
// event returns at once without suspending. Loop thread only.
class Event {
 public:
  bool IsSet() const { return set_; }
  // Sets the flag and wakes all waiters (in the order they began waiting).
  void Set();
  void Clear() { set_ = false; }

  // `co_await event.Wait()`: returns when the flag is set. Cancellable.
  auto Wait() { return Awaiter(this, std::nullopt); }
  // `bool set = co_await event.WaitUntil(deadline)`: false if the deadline passed
  // first. Cancellable.
  auto WaitUntil(TimePoint deadline) { return Awaiter(this, deadline); }

 private:
  struct Awaiter {
    Event* event;
    std::optional<TimePoint> deadline;
    internal::Waiter waiter;
    Awaiter(Event* e, std::optional<TimePoint> d) : event(e), deadline(d) {}
    bool await_ready() const noexcept { return event->set_; }
    template <internal::TaskPromise P>
    bool await_suspend(std::coroutine_handle<P> h) {
      return waiter.Suspend(h, event->waiters_, deadline);
    }
    bool await_resume() const {
      waiter.ThrowIfCancelled();
      return waiter.outcome() != internal::Waiter::Outcome::kTimedOut;
    }
  };

  bool set_ = false;
  IntrusiveList<internal::Waiter> waiters_;
};

inline void Event::Set() {
  set_ = true;
  while (internal::Waiter* w = waiters_.PopFront()) w->Wake();
}

}  // namespace cohort::runtime
