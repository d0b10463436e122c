#include "libs/runtime/task.h"

#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"

namespace cohort::runtime {
namespace {

using namespace std::chrono_literals;
using TaskTest = testing::ManualLoopTest;

Task<int> Add(int a, int b) { co_return a + b; }

Task<int> Chain(int depth) {
  if (depth == 0) co_return 0;
  co_return 1 + co_await Chain(depth - 1);
}

Task<int> Fail(std::string message) {
  co_await Yield();
  throw std::runtime_error(message);
}

// Sets *flag when destroyed: observes RAII cleanup of a frame.
struct SetOnExit {
  bool* flag;
  ~SetOnExit() { *flag = true; }
};

Task<int> SleepWithCleanup(Duration d, bool* cleaned_up) {
  SetOnExit guard{cleaned_up};
  co_await Sleep(d);
  co_return 1;
}

TEST_F(TaskTest, AwaitedTaskReturnsItsValue) {
  EXPECT_EQ(Run([]() -> Task<int> { co_return co_await Add(2, 3) * 2; }()), 10);
}

TEST_F(TaskTest, ExceptionPropagatesToTheAwaiter) {
  auto body = []() -> Task<std::string> {
    try {
      co_await Fail("boom");
    } catch (const std::runtime_error& e) {
      co_return std::string(e.what());
    }
    co_return std::string("no exception");
  };
  EXPECT_EQ(Run(body()), "boom");
}

TEST_F(TaskTest, RunUntilCompleteRethrowsTheTaskException) {
  EXPECT_THROW(Run(Fail("x")), std::runtime_error);
}

// A million nested co_awaits would overflow an 8 MB stack without symmetric transfer.
// Sanitizer instrumentation stops GCC from emitting the tail calls symmetric transfer
// relies on, so sanitizer builds check correctness on a shallower chain.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kChainDepth = 1'000;
#else
constexpr int kChainDepth = 1'000'000;
#endif

TEST_F(TaskTest, LongAwaitChainsUseNoStack) { EXPECT_EQ(Run(Chain(kChainDepth)), kChainDepth); }

TEST_F(TaskTest, TaskIsLazyAndSpawnStartsItOnTheNextIteration) {
  bool started = false;
  auto body = [](bool* flag) -> Task<void> {
    *flag = true;
    co_return;
  };
  Task<void> lazy = body(&started);
  EXPECT_FALSE(started);
  Run([](Task<void> t, bool* flag) -> Task<void> {
    TaskHandle<void> h = Spawn(std::move(t));
    EXPECT_FALSE(*flag);  // scheduled, not run
    co_await h;
    EXPECT_TRUE(*flag);
  }(std::move(lazy), &started));
}

TEST_F(TaskTest, HandleReportsResultOfFinishedTask) {
  Run([]() -> Task<void> {
    TaskHandle<int> h = Spawn(Add(20, 22));
    EXPECT_FALSE(h.Done());
    {
      auto got = co_await h;
      EXPECT_EQ(got, 42);
    }
    EXPECT_TRUE(h.Done());
    EXPECT_FALSE(h.Cancelled());
    EXPECT_EQ(h.Result(), 42);
    EXPECT_EQ(h.Exception(), nullptr);
  }());
}

TEST_F(TaskTest, YieldInterleavesReadyTasksFairly) {
  std::vector<std::string> log;
  auto worker = [](std::string name, std::vector<std::string>* out) -> Task<void> {
    for (int i = 0; i < 3; ++i) {
      out->push_back(name);
      co_await Yield();
    }
  };
  Run([&]() -> Task<void> {
    co_await Gather(worker("a", &log), worker("b", &log));
  }());
  EXPECT_EQ(log, (std::vector<std::string>{"a", "b", "a", "b", "a", "b"}));
}

TEST_F(TaskTest, SleepResumesAfterItsDelayOnTheLoopClock) {
  Run([]() -> Task<void> { co_await Sleep(5s); }());
  EXPECT_EQ(ElapsedMs(), 5000);
}

TEST_F(TaskTest, CancelRaisesAtSleepAndRunsCleanup) {
  bool cleaned_up = false;
  Run([](bool* cleaned) -> Task<void> {
    TaskHandle<int> h = Spawn(SleepWithCleanup(10s, cleaned));
    co_await Sleep(1s);
    EXPECT_TRUE(h.Cancel());
    EXPECT_THROW(co_await h, CancelledError);
    EXPECT_TRUE(h.Cancelled());
    EXPECT_TRUE(*cleaned);
  }(&cleaned_up));
  EXPECT_EQ(ElapsedMs(), 1000);  // the 10 s sleep was cut short
}

TEST_F(TaskTest, CancelBeforeStartMeansTheBodyNeverRuns) {
  bool ran = false;
  Run([](bool* ran) -> Task<void> {
    auto body = [](bool* r) -> Task<void> {
      *r = true;
      co_return;
    };
    TaskHandle<void> h = Spawn(body(ran));
    h.Cancel();
    EXPECT_THROW(co_await h, CancelledError);
  }(&ran));
  EXPECT_FALSE(ran);
}

TEST_F(TaskTest, TaskMayCatchCancellationAndFinishNormally) {
  Run([]() -> Task<void> {
    auto stubborn = []() -> Task<int> {
      try {
        co_await Sleep(1h);
      } catch (const CancelledError&) {
        co_return 7;
      }
      co_return 0;
    };
    TaskHandle<int> h = Spawn(stubborn());
    co_await Yield();
    h.Cancel();
    {
      auto got = co_await h;
      EXPECT_EQ(got, 7);
    }
    EXPECT_FALSE(h.Cancelled());
  }());
}

TEST_F(TaskTest, CancellingAFinishedTaskReturnsFalse) {
  Run([]() -> Task<void> {
    TaskHandle<int> h = Spawn(Add(1, 1));
    co_await h;
    EXPECT_FALSE(h.Cancel());
    EXPECT_EQ(h.Result(), 2);
  }());
}

TEST_F(TaskTest, CancelRequestedWhileRunningIsRaisedAtTheNextSuspension) {
  Run([]() -> Task<void> {
    auto self_cancelling = [](TaskHandle<void>* self, int* steps) -> Task<void> {
      self->Cancel();  // running: nothing to interrupt yet
      ++*steps;
      co_await Yield();  // raised here
      ++*steps;
    };
    TaskHandle<void> h;
    int steps = 0;
    h = Spawn(self_cancelling(&h, &steps));
    EXPECT_THROW(co_await h, CancelledError);
    EXPECT_EQ(steps, 1);
  }());
}

TEST_F(TaskTest, CancellingTheAwaiterOfATaskCancelsThatTaskToo) {
  Run([]() -> Task<void> {
    bool inner_cleaned = false;
    TaskHandle<int> inner = Spawn(SleepWithCleanup(1h, &inner_cleaned));
    auto outer_body = [](TaskHandle<int> h) -> Task<int> { co_return co_await h; };
    TaskHandle<int> outer = Spawn(outer_body(inner));
    co_await Yield();
    co_await Yield();
    outer.Cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.Cancelled());
    EXPECT_TRUE(inner_cleaned);
  }());
}

TEST_F(TaskTest, CancelPassedToAnAwaitedTaskThatFinishesAnywayCancelsTheAwaiter) {
  Run([]() -> Task<void> {
    Event event;
    auto inner_body = [](Event* e) -> Task<int> {
      co_await e->Wait();
      co_return 42;  // no suspension point after the wake-up
    };
    TaskHandle<int> inner = Spawn(inner_body(&event));
    auto outer_body = [](TaskHandle<int> h) -> Task<int> { co_return co_await h; };
    TaskHandle<int> outer = Spawn(outer_body(inner));
    co_await Yield();
    co_await Yield();
    event.Set();     // the inner task is woken...
    outer.Cancel();  // ...and the cancellation passed on to it can no longer be raised
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_EQ(inner.Result(), 42);
  }());
}

TEST_F(TaskTest, CancellingTwiceBeforeTheFirstIsRaisedRaisesOnce) {
  Run([]() -> Task<void> {
    auto cleanup_after_cancel = [](int* cleanups) -> Task<int> {
      try {
        co_await Sleep(1h);
      } catch (const CancelledError&) {
      }
      co_await Sleep(1ms);  // asynchronous cleanup: must not see a second cancellation
      ++*cleanups;
      co_return 1;
    };
    int cleanups = 0;
    TaskHandle<int> h = Spawn(cleanup_after_cancel(&cleanups));
    co_await Yield();
    h.Cancel();
    h.Cancel();
    {
      int got = co_await h;
      EXPECT_EQ(got, 1);
    }
    EXPECT_EQ(cleanups, 1);
  }());
}

TEST(TaskLifetime, TeardownUnwindsChildrenBeforeTheParentFrameTheyUse) {
  bool released = false;
  {
    ManualClock clock;
    EventLoop loop(&clock);
    auto parent = [](bool* released) -> Task<void> {
      Lock lock;  // lives in the parent's frame, used by its children
      auto worker = [](Lock* l, bool* released) -> Task<void> {
        LockGuard g = co_await l->Scoped();
        SetOnExit on_exit{released};
        co_await Sleep(1h);
      };
      TaskGroup group;
      group.Spawn(worker(&lock, released));
      group.Spawn(worker(&lock, released));
      co_await group.Join();  // cancelled at teardown: cancels and awaits the children
    };
    Spawn(loop, parent(&released));
    loop.RunUntilIdle();
  }  // ASan reports a use-after-free here if a child outlives the parent's Lock
  EXPECT_TRUE(released);
}

TEST(TaskLifetime, LoopDestroyedRightAfterToThreadIsSafe) {
  for (int i = 0; i < 200; ++i) {
    EventLoop loop;
    int v = RunUntilComplete(loop, []() -> Task<int> { co_return co_await ToThread([] { return 7; }); }());
    ASSERT_EQ(v, 7);
  }  // the pool thread may still be inside Post(): the destructor waits for it
}

TEST(TaskLifetime, DestroyingTheLoopDestroysUnfinishedTaskFrames) {
  bool cleaned_up = false;
  {
    ManualClock clock;  // no auto-advance: the sleep never ends
    EventLoop loop(&clock);
    TaskHandle<int> h = Spawn(loop, SleepWithCleanup(1h, &cleaned_up));
    loop.RunUntilIdle();
    EXPECT_FALSE(h.Done());
    EXPECT_FALSE(cleaned_up);
  }
  EXPECT_TRUE(cleaned_up);
}

}  // namespace
}  // namespace cohort::runtime
