// Event, Lock, Semaphore, BoundedSemaphore, Condition and Gate.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"

namespace cohort::runtime {
namespace {

using namespace std::chrono_literals;
using SyncTest = testing::ManualLoopTest;

// ---- Event -------------------------------------------------------------------------

TEST_F(SyncTest, EventSetWakesEveryWaiter) {
  Run([this]() -> Task<void> {
    Event event;
    int woken = 0;
    auto waiter = [](Event* e, int* n) -> Task<void> {
      co_await e->Wait();
      ++*n;
    };
    std::vector<TaskHandle<void>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(Spawn(waiter(&event, &woken)));
    co_await Sleep(10ms);
    EXPECT_EQ(woken, 0);
    event.Set();
    co_await Gather(hs);
    EXPECT_EQ(woken, 3);
    EXPECT_EQ(ElapsedMs(), 10);
    co_await event.Wait();  // already set: returns at once
  }());
}

TEST_F(SyncTest, EventWaitUntilReportsTheDeadline) {
  Run([this]() -> Task<void> {
    Event event;
    {
      bool got = co_await event.WaitUntil(clock_.Now() + 10ms);
      EXPECT_FALSE(got);
    }
    EXPECT_EQ(ElapsedMs(), 10);
    event.Set();
    {
      bool got = co_await event.WaitUntil(clock_.Now() + 10ms);
      EXPECT_TRUE(got);
    }
  }());
}

TEST_F(SyncTest, CancellationIsRaisedAtEventWait) {
  Run([]() -> Task<void> {
    Event event;
    auto waiter = [](Event* e) -> Task<void> { co_await e->Wait(); };
    TaskHandle<void> h = Spawn(waiter(&event));
    co_await Yield();
    h.Cancel();
    EXPECT_THROW(co_await h, CancelledError);
  }());
}

// ---- Lock --------------------------------------------------------------------------

TEST_F(SyncTest, LockGivesMutualExclusionInFifoOrder) {
  Run([]() -> Task<void> {
    Lock lock;
    std::vector<std::string> log;
    auto critical = [](Lock* l, std::vector<std::string>* out, std::string name) -> Task<void> {
      LockGuard guard = co_await l->Scoped();
      out->push_back(name + "+");
      co_await Sleep(1ms);  // others run meanwhile but must not enter
      out->push_back(name + "-");
    };
    co_await Gather(critical(&lock, &log, "a"), critical(&lock, &log, "b"), critical(&lock, &log, "c"));
    EXPECT_EQ(log, (std::vector<std::string>{"a+", "a-", "b+", "b-", "c+", "c-"}));
    EXPECT_FALSE(lock.Locked());
  }());
}

TEST_F(SyncTest, TaskCancelledWhileWaitingForALockNeverHoldsIt) {
  Run([]() -> Task<void> {
    Lock lock;
    co_await lock.Acquire();
    std::vector<std::string> got;
    auto acquirer = [](Lock* l, std::vector<std::string>* out, std::string name) -> Task<void> {
      co_await l->Acquire();
      out->push_back(name);
      l->Release();
    };
    TaskHandle<void> first = Spawn(acquirer(&lock, &got, "first"));
    TaskHandle<void> second = Spawn(acquirer(&lock, &got, "second"));
    co_await Yield();
    first.Cancel();  // raised at the acquisition
    EXPECT_THROW(co_await first, CancelledError);
    lock.Release();
    co_await second;
    EXPECT_EQ(got, (std::vector<std::string>{"second"}));
    EXPECT_FALSE(lock.Locked());
  }());
}

// ---- Semaphore ---------------------------------------------------------------------

TEST_F(SyncTest, SemaphoreOfTwoNeverAdmitsAThird) {
  Run([this]() -> Task<void> {
    Semaphore sem(2);
    int inside = 0;
    int most = 0;
    auto worker = [](Semaphore* s, int* in, int* max) -> Task<void> {
      co_await s->Acquire();
      *max = std::max(*max, ++*in);
      co_await Sleep(10ms);
      --*in;
      s->Release();
    };
    std::vector<Task<void>> ws;
    for (int i = 0; i < 10; ++i) ws.push_back(worker(&sem, &inside, &most));
    co_await Gather(std::move(ws));
    EXPECT_EQ(most, 2);
    EXPECT_EQ(ElapsedMs(), 50);  // 10 workers, 2 at a time, 10 ms each
    EXPECT_EQ(sem.value(), 2);
  }());
}

TEST_F(SyncTest, BoundedSemaphoreRejectsReleaseBeyondItsBound) {
  Run([]() -> Task<void> {
    BoundedSemaphore sem(1);
    absl::Status over = sem.Release();
    EXPECT_EQ(over.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(sem.value(), 1);  // unchanged
    co_await sem.Acquire();
    EXPECT_TRUE(sem.Locked());
    EXPECT_TRUE(sem.Release().ok());
    EXPECT_EQ(sem.value(), 1);
  }());
}

// ---- Condition ---------------------------------------------------------------------

TEST_F(SyncTest, ConditionWaitForReturnsOnceThePredicateHolds) {
  Run([]() -> Task<void> {
    Condition cond;
    int value = 0;
    auto waiter = [](Condition* c, int* v) -> Task<int> {
      LockGuard g = co_await c->lock().Scoped();
      co_await c->WaitFor([v] { return *v >= 3; });
      EXPECT_TRUE(c->lock().Locked());
      co_return *v;
    };
    TaskHandle<int> h = Spawn(waiter(&cond, &value));
    for (int i = 0; i < 3; ++i) {
      co_await Yield();
      LockGuard g = co_await cond.lock().Scoped();
      ++value;
      cond.NotifyAll();
    }
    {
      auto got = co_await h;
      EXPECT_EQ(got, 3);
    }
  }());
}

TEST_F(SyncTest, ConditionNotifyWakesOneWaiterAndNotifyAllWakesTheRest) {
  Run([]() -> Task<void> {
    Condition cond;
    int woken = 0;
    auto waiter = [](Condition* c, int* n) -> Task<void> {
      LockGuard g = co_await c->lock().Scoped();
      co_await c->Wait();
      ++*n;
    };
    std::vector<TaskHandle<void>> hs;
    for (int i = 0; i < 3; ++i) hs.push_back(Spawn(waiter(&cond, &woken)));
    co_await Sleep(1ms);
    {
      LockGuard g = co_await cond.lock().Scoped();
      cond.Notify(1);
    }
    co_await Sleep(1ms);
    EXPECT_EQ(woken, 1);
    {
      LockGuard g = co_await cond.lock().Scoped();
      cond.NotifyAll();
    }
    co_await Gather(hs);
    EXPECT_EQ(woken, 3);
  }());
}

TEST_F(SyncTest, ConditionWaitReacquiresTheLockWhenCancelled) {
  Run([]() -> Task<void> {
    Condition cond;
    bool held_on_cancel = false;
    auto waiter = [](Condition* c, bool* held) -> Task<void> {
      LockGuard g = co_await c->lock().Scoped();
      try {
        co_await c->Wait();
      } catch (const CancelledError&) {
        *held = c->lock().Locked();
        throw;
      }
    };
    TaskHandle<void> h = Spawn(waiter(&cond, &held_on_cancel));
    co_await Sleep(1ms);
    h.Cancel();
    EXPECT_THROW(co_await h, CancelledError);
    EXPECT_TRUE(held_on_cancel);
    EXPECT_FALSE(cond.lock().Locked());  // released by the waiter's guard
  }());
}

TEST_F(SyncTest, NotificationOfAWaiterCancelledWhileReacquiringPassesToAnother) {
  Run([]() -> Task<void> {
    Condition cond;
    int woken = 0;
    auto waiter = [](Condition* c, int* n) -> Task<void> {
      LockGuard g = co_await c->lock().Scoped();
      co_await c->Wait();
      ++*n;
    };
    TaskHandle<void> first = Spawn(waiter(&cond, &woken));
    TaskHandle<void> second = Spawn(waiter(&cond, &woken));
    co_await Yield();
    {
      LockGuard g = co_await cond.lock().Scoped();
      cond.Notify(1);   // wakes `first`, which must now re-acquire the lock we hold
      co_await Yield();
      first.Cancel();   // cancelled while re-acquiring
    }
    EXPECT_THROW(co_await first, CancelledError);
    co_await second;  // the notification was passed on
    EXPECT_EQ(woken, 1);
  }());
}

// ---- Gate --------------------------------------------------------------------------

TEST_F(SyncTest, GateCloseRefusesNewWorkAndWaitsForWorkInside) {
  Run([this]() -> Task<void> {
    Gate gate;
    auto work = [](Gate::Holder holder) -> Task<void> { co_await Sleep(20ms); };
    std::optional<Gate::Holder> h = gate.TryEnter();
    EXPECT_TRUE(h.has_value());
    TaskHandle<void> w = Spawn(work(std::move(*h)));
    h.reset();
    co_await Sleep(5ms);
    co_await gate.Close();
    EXPECT_TRUE(w.Done());
    EXPECT_EQ(ElapsedMs(), 20);
    EXPECT_FALSE(gate.TryEnter().has_value());
  }());
}

}  // namespace
}  // namespace cohort::runtime
