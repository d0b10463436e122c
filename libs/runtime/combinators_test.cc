// Gather, Wait, WaitFor, Shield, AsCompleted and TaskGroup, each against asyncio's
// documented behaviour. Timings are on a manual clock, so they are exact.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"

namespace cohort::runtime {
namespace {

using namespace std::chrono_literals;
using CombinatorsTest = testing::ManualLoopTest;

Task<int> After(Duration d, int value, std::vector<int>* finished = nullptr) {
  co_await Sleep(d);
  if (finished) finished->push_back(value);
  co_return value;
}

Task<int> FailAfter(Duration d, std::string message) {
  co_await Sleep(d);
  throw std::runtime_error(message);
}

std::string MessageOf(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  }
}

// ---- Gather ------------------------------------------------------------------------

TEST_F(CombinatorsTest, GatherReturnsResultsInArgumentOrderWhenTasksFinishInReverse) {
  std::vector<int> finished;
  std::vector<Task<int>> tasks;
  for (int i = 0; i < 5; ++i) tasks.push_back(After((5 - i) * 10ms, i, &finished));
  std::vector<int> results = Run(Gather(std::move(tasks)));
  EXPECT_EQ(finished, (std::vector<int>{4, 3, 2, 1, 0}));
  EXPECT_EQ(results, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_EQ(ElapsedMs(), 50);  // concurrent, not one by one
}

TEST_F(CombinatorsTest, GatherRaisesTheFirstFailureAtOnceWhileOthersKeepRunning) {
  Run([this]() -> Task<void> {
    TaskHandle<int> slow = Spawn(After(50ms, 1));
    TaskHandle<int> failing = Spawn(FailAfter(10ms, "first"));
    TaskHandle<int> later_failing = Spawn(FailAfter(20ms, "second"));
    std::vector<TaskHandle<int>> all{slow, failing, later_failing};
    std::string error;
    try {
      co_await Gather(all);
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "first");
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_FALSE(slow.Done());  // not cancelled: still running
    {
      auto got = co_await slow;
      EXPECT_EQ(got, 1);
    }
    EXPECT_EQ(ElapsedMs(), 50);
    later_failing.Exception();
  }());
}

TEST_F(CombinatorsTest, GatherWithReturnExceptionsPutsEachFailureInItsSlot) {
  std::vector<Task<int>> tasks;
  tasks.push_back(After(30ms, 1));
  tasks.push_back(FailAfter(10ms, "bad"));
  tasks.push_back(After(20ms, 3));
  std::vector<Result<int>> results = Run(Gather(std::move(tasks), kReturnExceptions));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].value(), 1);
  ASSERT_FALSE(results[1].ok());
  EXPECT_EQ(MessageOf(results[1].error()), "bad");
  EXPECT_EQ(results[2].value(), 3);
  EXPECT_EQ(ElapsedMs(), 30);  // waited for all, despite the failure at 10 ms
}

TEST_F(CombinatorsTest, GatherTreatsACancelledTaskAsAFailure) {
  Run([]() -> Task<void> {
    TaskHandle<int> a = Spawn(After(10ms, 1));
    TaskHandle<int> b = Spawn(After(1h, 2));
    b.Cancel();
    std::vector<TaskHandle<int>> both{a, b};
    EXPECT_THROW(co_await Gather(both), CancelledError);
    std::vector<Result<int>> r = co_await Gather(both, kReturnExceptions);
    EXPECT_EQ(r[0].value(), 1);
    EXPECT_THROW(r[1].value(), CancelledError);
  }());
}

TEST_F(CombinatorsTest, CancellingGatherCancelsEveryChildAndWaitsForThem) {
  Run([this]() -> Task<void> {
    TaskHandle<int> a = Spawn(After(1h, 1));
    TaskHandle<int> b = Spawn(After(2h, 2));
    TaskHandle<std::vector<int>> gather = Spawn(Gather(std::vector{a, b}));
    co_await Sleep(5ms);
    gather.Cancel();
    EXPECT_THROW(co_await gather, CancelledError);
    EXPECT_TRUE(a.Cancelled());
    EXPECT_TRUE(b.Cancelled());
    EXPECT_EQ(ElapsedMs(), 5);
  }());
}

// (Vectors of handles are named before a co_await: GCC 12 cannot keep an
// initializer_list's backing array alive across a suspension in the same expression.)

TEST_F(CombinatorsTest, GatherOfDifferentTypesReturnsATuple) {
  auto name = []() -> Task<std::string> { co_return "cohort"; };
  auto [n, s, v] = Run(Gather(After(1ms, 7), name(), []() -> Task<void> { co_return; }()));
  EXPECT_EQ(n, 7);
  EXPECT_EQ(s, "cohort");
  EXPECT_EQ(v, std::monostate{});
}

TEST_F(CombinatorsTest, GatherOfNothingReturnsAtOnce) {
  EXPECT_TRUE(Run(Gather(std::vector<Task<int>>{})).empty());
}

TEST_F(CombinatorsTest, GatherGivesEachDuplicateHandleItsResult) {
  Run([]() -> Task<void> {
    TaskHandle<int> a = Spawn(After(1ms, 9));
    {
      std::vector<TaskHandle<int>> same{a, a, a};
      auto got = co_await Gather(same);
      EXPECT_EQ(got, (std::vector<int>{9, 9, 9}));
    }
  }());
}

// ---- Wait --------------------------------------------------------------------------

TEST_F(CombinatorsTest, WaitFirstCompletedReturnsAsSoonAsOneFinishes) {
  Run([this]() -> Task<void> {
    std::vector<TaskHandle<int>> hs{Spawn(After(30ms, 1)), Spawn(After(10ms, 2)), Spawn(After(20ms, 3))};
    WaitResult<int> r = co_await Wait(hs, ReturnWhen::kFirstCompleted);
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(r.done[0].Result(), 2);
    EXPECT_EQ(r.pending.size(), 2u);
    for (auto& h : r.pending) EXPECT_FALSE(h.Done());
    co_await Gather(r.pending);  // never cancelled: they still finish
    EXPECT_EQ(ElapsedMs(), 30);
  }());
}

TEST_F(CombinatorsTest, WaitFirstExceptionReturnsAtTheFirstFailure) {
  Run([this]() -> Task<void> {
    std::vector<TaskHandle<int>> hs{Spawn(After(5ms, 1)), Spawn(FailAfter(10ms, "x")), Spawn(After(30ms, 3))};
    WaitResult<int> r = co_await Wait(hs, ReturnWhen::kFirstException);
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_EQ(r.done.size(), 2u);
    EXPECT_EQ(r.pending.size(), 1u);
    r.done[1].Exception();
    co_await r.pending[0];
  }());
}

TEST_F(CombinatorsTest, WaitFirstExceptionWithoutAFailureWaitsForAll) {
  Run([this]() -> Task<void> {
    std::vector<TaskHandle<int>> hs{Spawn(After(5ms, 1)), Spawn(After(10ms, 2))};
    WaitResult<int> r = co_await Wait(hs, ReturnWhen::kFirstException);
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_EQ(r.done.size(), 2u);
    EXPECT_TRUE(r.pending.empty());
  }());
}

TEST_F(CombinatorsTest, WaitTimeoutReturnsWhatIsDoneAndCancelsNothing) {
  Run([this]() -> Task<void> {
    std::vector<TaskHandle<int>> hs{Spawn(After(5ms, 1)), Spawn(After(50ms, 2))};
    WaitResult<int> r = co_await Wait(hs, ReturnWhen::kAllCompleted, 20ms);
    EXPECT_EQ(ElapsedMs(), 20);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(r.pending.size(), 1u);
    {
      auto got = co_await r.pending[0];
      EXPECT_EQ(got, 2);  // not cancelled
    }
  }());
}

TEST_F(CombinatorsTest, WaitOnTasksAlreadyFinishedReturnsAtOnce) {
  Run([this]() -> Task<void> {
    TaskHandle<int> h = Spawn(After(1ms, 1));
    co_await h;
    std::vector<TaskHandle<int>> one{h};
    WaitResult<int> r = co_await Wait(one, ReturnWhen::kAllCompleted);
    EXPECT_EQ(r.done.size(), 1u);
    EXPECT_EQ(ElapsedMs(), 1);
  }());
}

TEST_F(CombinatorsTest, WaitOfAnEmptySetIsAnError) {
  EXPECT_THROW(Run(Wait(std::vector<TaskHandle<int>>{})), std::invalid_argument);
}

// ---- WaitFor -----------------------------------------------------------------------

TEST_F(CombinatorsTest, WaitForReturnsTheResultWithinTheTimeout) {
  EXPECT_EQ(Run(WaitFor(After(10ms, 5), 1s)), 5);
  EXPECT_EQ(ElapsedMs(), 10);
}

TEST_F(CombinatorsTest, WaitForTimeoutCancelsTheTaskAndWaitsForItsCleanup) {
  Run([this]() -> Task<void> {
    bool cleanup_done = false;
    auto slow = [](bool* done) -> Task<int> {
      try {
        co_await Sleep(1h);
      } catch (const CancelledError&) {
        // Asynchronous cleanup that WaitFor must wait for.
      }
      co_await Sleep(5ms);
      *done = true;
      throw CancelledError();
    };
    TaskHandle<int> h = Spawn(slow(&cleanup_done));
    EXPECT_THROW(co_await WaitFor(h, 20ms), TimeoutError);
    EXPECT_TRUE(cleanup_done);
    EXPECT_TRUE(h.Cancelled());
    EXPECT_EQ(ElapsedMs(), 25);
  }());
}

TEST_F(CombinatorsTest, WaitForReturnsTheValueOfATaskThatSwallowedTheCancellation) {
  auto stubborn = []() -> Task<int> {
    try {
      co_await Sleep(1h);
    } catch (const CancelledError&) {
    }
    co_return 3;
  };
  EXPECT_EQ(Run(WaitFor(stubborn(), 10ms)), 3);
}

TEST_F(CombinatorsTest, CancellingWaitForCancelsTheTask) {
  Run([]() -> Task<void> {
    TaskHandle<int> inner = Spawn(After(1h, 1));
    TaskHandle<int> outer = Spawn(WaitFor(inner, 2h));
    co_await Sleep(1ms);
    outer.Cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_TRUE(inner.Cancelled());
  }());
}

// ---- Shield ------------------------------------------------------------------------

TEST_F(CombinatorsTest, ShieldKeepsTheTaskRunningWhenTheAwaiterIsCancelled) {
  Run([this]() -> Task<void> {
    TaskHandle<int> inner = Spawn(After(50ms, 8));
    TaskHandle<int> outer = Spawn(Shield(inner));
    co_await Sleep(10ms);
    outer.Cancel();
    EXPECT_THROW(co_await outer, CancelledError);
    EXPECT_EQ(ElapsedMs(), 10);  // the awaiter left at once
    EXPECT_FALSE(inner.Done());
    {
      auto got = co_await inner;
      EXPECT_EQ(got, 8);  // and the result is still there
    }
  }());
}

TEST_F(CombinatorsTest, WaitForOfAShieldedTaskTimesOutWithoutCancellingIt) {
  Run([this]() -> Task<void> {
    TaskHandle<int> inner = Spawn(After(50ms, 4));
    EXPECT_THROW(co_await WaitFor(Shield(inner), 10ms), TimeoutError);
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_FALSE(inner.Done());
    {
      auto got = co_await WaitFor(inner, 1s);
      EXPECT_EQ(got, 4);  // can be waited on again
    }
  }());
}

// ---- AsCompleted -------------------------------------------------------------------

TEST_F(CombinatorsTest, AsCompletedYieldsFinishedTasksFirstThenEarliestFirst) {
  Run([this]() -> Task<void> {
    TaskHandle<int> done_before = Spawn(After(1ms, 0));
    co_await done_before;
    std::vector<TaskHandle<int>> hs{Spawn(After(30ms, 30)), Spawn(After(10ms, 10)), done_before,
                                    Spawn(After(20ms, 20))};
    AsCompleted<int> it(hs);
    std::vector<int> order;
    while (it.HasNext()) {
      TaskHandle<int> h = co_await it.Next();
      order.push_back(h.Result());
    }
    EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30}));
    EXPECT_EQ(ElapsedMs(), 31);
  }());
}

TEST_F(CombinatorsTest, AsCompletedRaisesTimeoutForTasksNotDoneInTime) {
  Run([this]() -> Task<void> {
    TaskHandle<int> slow = Spawn(After(1h, 2));
    std::vector<TaskHandle<int>> hs{Spawn(After(5ms, 1)), slow};
    AsCompleted<int> it(hs, 10ms);
    {
      TaskHandle<int> got = co_await it.Next();
      EXPECT_EQ(got.Result(), 1);
    }
    EXPECT_THROW(co_await it.Next(), TimeoutError);
    EXPECT_EQ(ElapsedMs(), 10);
    EXPECT_FALSE(slow.Done());  // never cancelled
    slow.Cancel();
  }());
}

// ---- TaskGroup ---------------------------------------------------------------------

TEST_F(CombinatorsTest, TaskGroupJoinWaitsForEveryChild) {
  Run([this]() -> Task<void> {
    std::vector<int> finished;
    TaskGroup group;
    group.Spawn(After(30ms, 1, &finished));
    group.Spawn(After(10ms, 2, &finished));
    co_await group.Join();
    EXPECT_EQ(finished, (std::vector<int>{2, 1}));
    EXPECT_EQ(ElapsedMs(), 30);
  }());
}

TEST_F(CombinatorsTest, TaskGroupFailureCancelsSiblingsAndJoinRaisesIt) {
  Run([this]() -> Task<void> {
    TaskGroup group;
    TaskHandle<int> sibling = group.Spawn(After(1h, 1));
    group.Spawn(FailAfter(10ms, "child failed"));
    std::string error;
    try {
      co_await group.Join();
    } catch (const std::runtime_error& e) {
      error = e.what();
    }
    EXPECT_EQ(error, "child failed");
    EXPECT_TRUE(sibling.Cancelled());
    EXPECT_EQ(ElapsedMs(), 10);
    TaskHandle<int> late = group.Spawn(After(1ms, 2));  // shutting down
    EXPECT_THROW(co_await late, CancelledError);
  }());
}

TEST_F(CombinatorsTest, CancellingTaskGroupJoinCancelsItsChildren) {
  Run([]() -> Task<void> {
    TaskGroup group;
    TaskHandle<int> child = group.Spawn(After(1h, 1));
    auto joiner = [](TaskGroup* g) -> Task<void> { co_await g->Join(); };
    TaskHandle<void> j = Spawn(joiner(&group));
    co_await Sleep(1ms);
    j.Cancel();
    EXPECT_THROW(co_await j, CancelledError);
    EXPECT_TRUE(child.Cancelled());
  }());
}

TEST_F(CombinatorsTest, GroupLeftByAnExceptionCancelsItsRunningChildren) {
  Run([]() -> Task<void> {
    TaskHandle<int> child;
    try {
      TaskGroup group;
      child = group.Spawn(After(1h, 1));
      throw std::runtime_error("body failed before Join");
    } catch (const std::runtime_error&) {
    }
    EXPECT_THROW(co_await child, CancelledError);
  }());
}

TEST_F(CombinatorsTest, CancelledJoinStillRaisesAChildFailureFirst) {
  Run([]() -> Task<void> {
    TaskGroup group;
    auto fails_when_cancelled = []() -> Task<int> {
      try {
        co_await Sleep(1h);
      } catch (const CancelledError&) {
      }
      throw std::runtime_error("cleanup failed");
    };
    group.Spawn(fails_when_cancelled());
    auto joiner = [](TaskGroup* g) -> Task<void> { co_await g->Join(); };
    TaskHandle<void> j = Spawn(joiner(&group));
    co_await Sleep(1ms);
    j.Cancel();
    EXPECT_THROW(co_await j, std::runtime_error);
  }());
}

TEST_F(CombinatorsTest, TaskGroupReleasesEachChildAsItFinishes) {
  Run([]() -> Task<void> {
    TaskGroup group;
    auto quick = [](int* done) -> Task<void> {
      co_await Yield();
      ++*done;
    };
    int done = 0;
    std::size_t most_running = 0;
    for (int i = 0; i < 100'000; ++i) {
      group.Spawn(quick(&done));
      if (i % 100 == 99) co_await Sleep(1ms);  // lets the last hundred finish
      most_running = std::max(most_running, group.running());
    }
    co_await group.Join();
    EXPECT_EQ(done, 100'000);
    EXPECT_LE(most_running, 100u);  // not 100,000: finished children are freed
    EXPECT_EQ(group.running(), 0u);
  }());
}

TEST_F(CombinatorsTest, TaskGroupJoinWaitsForChildrenSpawnedWhileItWaits) {
  Run([this]() -> Task<void> {
    TaskGroup group;
    std::vector<int> finished;
    auto spawner = [](TaskGroup* g, std::vector<int>* finished) -> Task<void> {
      co_await Sleep(5ms);
      g->Spawn(After(20ms, 2, finished));
      finished->push_back(1);
    };
    group.Spawn(spawner(&group, &finished));
    co_await group.Join();
    EXPECT_EQ(finished, (std::vector<int>{1, 2}));
    EXPECT_EQ(ElapsedMs(), 25);
  }());
}

}  // namespace
}  // namespace cohort::runtime
