#include "libs/runtime/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"

namespace cohort::runtime {
namespace {

using namespace std::chrono_literals;

TEST(EventLoop, CallSoonRunsCallbacksInFifoOrder) {
  EventLoop loop;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) loop.CallSoon([&order, i] { order.push_back(i); });
  loop.RunUntilIdle();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(EventLoop, CallbacksScheduledWhileRunningWaitForTheNextIteration) {
  EventLoop loop;
  std::vector<std::string> order;
  loop.CallSoon([&] {
    order.push_back("a");
    loop.CallSoon([&] { order.push_back("c"); });
  });
  loop.CallSoon([&] { order.push_back("b"); });
  loop.RunUntilIdle();
  EXPECT_EQ(order, (std::vector<std::string>{"a", "b", "c"}));
}

TEST(EventLoop, OthersReadySeesWhatIsLeftOfThisTurnAndWhatIsScheduledForTheNext) {
  EventLoop loop;
  std::vector<bool> seen;
  loop.CallSoon([&] { seen.push_back(loop.OthersReady()); });  // the second is left
  loop.CallSoon([&] {
    seen.push_back(loop.OthersReady());  // alone
    loop.CallSoon([&] { seen.push_back(loop.OthersReady()); });
    seen.push_back(loop.OthersReady());  // the one just scheduled
  });
  loop.RunUntilIdle();
  EXPECT_EQ(seen, (std::vector<bool>{true, false, true, false}));
  EXPECT_FALSE(loop.OthersReady());
}

TEST(EventLoop, TimersFireInDeadlineOrderOnlyOnceDue) {
  ManualClock clock;
  EventLoop loop(&clock);
  std::vector<int> fired;
  loop.CallLater(30ms, [&] { fired.push_back(30); });
  loop.CallLater(10ms, [&] { fired.push_back(10); });
  loop.CallLater(20ms, [&] { fired.push_back(20); });
  loop.CallLater(10ms, [&] { fired.push_back(11); });  // same deadline: arming order
  loop.RunUntilIdle();
  EXPECT_TRUE(fired.empty());
  clock.Advance(10ms);
  loop.RunUntilIdle();
  EXPECT_EQ(fired, (std::vector<int>{10, 11}));
  clock.Advance(25ms);
  loop.RunUntilIdle();
  EXPECT_EQ(fired, (std::vector<int>{10, 11, 20, 30}));
}

TEST(EventLoop, RunFiresATimerThatAManualClockAdvancedPastWithoutBlocking) {
  // A manual clock moved on by a callback: the due timer fires on the next iteration
  // instead of the loop blocking in the kernel for an event that never comes.
  ManualClock clock;
  EventLoop loop(&clock);
  bool fired = false;
  loop.CallLater(10ms, [&] {
    fired = true;
    loop.Stop();
  });
  loop.CallSoon([&] { clock.Advance(20ms); });
  loop.Run();
  EXPECT_TRUE(fired);
}

TEST(EventLoop, CancelledTimerNeverFires) {
  ManualClock clock;
  EventLoop loop(&clock);
  bool fired = false;
  TimerId id = loop.CallLater(5ms, [&] { fired = true; });
  EXPECT_TRUE(loop.CancelTimer(id));
  EXPECT_FALSE(loop.CancelTimer(id));
  clock.Advance(10ms);
  loop.RunUntilIdle();
  EXPECT_FALSE(fired);
  EXPECT_EQ(loop.pending_timers(), 0u);
}

TEST(EventLoop, ABurstOfDueTimersFiresInDeadlineThenArmingOrderWithCancelsAndNewArrivals) {
  // Enough timers that most fall due at once, which the heap serves as a sorted run.
  ManualClock clock;
  EventLoop loop(&clock);
  constexpr int kTimers = 20'000;
  std::vector<std::pair<long long, int>> fired;  // (deadline in us, arming index)
  std::vector<TimerId> ids(kTimers);
  for (int i = 0; i < kTimers; ++i) {
    long long us = (i * 7919) % 1000;  // many equal deadlines: arming order breaks ties
    ids[i] = loop.CallAt(TimePoint(std::chrono::microseconds(us)), [&fired, &loop, &ids, us, i] {
      fired.emplace_back(us, i);
      // While the burst fires: cancel a later timer, arm one due now and one later.
      if (i % 1000 == 0 && i + 1 < kTimers) loop.CancelTimer(ids[i + 1]);
      if (i == 5) {
        loop.CallAt(TimePoint(std::chrono::microseconds(0)), [&fired] { fired.emplace_back(0, -1); });
        loop.CallAt(TimePoint(std::chrono::microseconds(2000)), [&fired] { fired.emplace_back(2000, -2); });
      }
    });
  }
  for (int i = 1; i < kTimers; i += 997) EXPECT_TRUE(loop.CancelTimer(ids[i]));
  clock.Advance(std::chrono::microseconds(1500));
  loop.RunUntilIdle();
  // The one armed at 0 us while the burst fired (already past) runs next, before the
  // rest of the burst; apart from it, deadline order.
  auto armed_late = std::find(fired.begin(), fired.end(), std::make_pair(0LL, -1));
  ASSERT_NE(armed_late, fired.end());
  ASSERT_NE(armed_late, fired.begin());
  EXPECT_EQ(*(armed_late - 1), std::make_pair((5LL * 7919) % 1000, 5));
  fired.erase(armed_late);
  for (std::size_t k = 1; k < fired.size(); ++k) {
    ASSERT_LE(fired[k - 1].first, fired[k].first) << "at " << k;
    if (fired[k - 1].first == fired[k].first) {
      ASSERT_LT(fired[k - 1].second, fired[k].second) << "at " << k;
    }
  }
  fired.emplace_back(0, -1);  // counted below
  int cancelled = 0;
  for (int i = 0; i < kTimers; ++i) {
    bool was_cancelled = (i % 997 == 1) || (i % 1000 == 1);
    cancelled += was_cancelled;
  }
  // Every timer due by 1.5 ms fired once, except the cancelled ones; the one armed at
  // 0 us during the burst fired too (after those due before it had run).
  EXPECT_EQ(fired.size(), static_cast<std::size_t>(kTimers - cancelled + 1));
  EXPECT_EQ(loop.pending_timers(), 1u);  // the one at 2 ms
  fired.clear();
  clock.Advance(std::chrono::microseconds(1000));
  loop.RunUntilIdle();
  EXPECT_EQ(fired, (std::vector<std::pair<long long, int>>{{2000, -2}}));
  EXPECT_EQ(loop.pending_timers(), 0u);
}

// Bursts of every width: the due run is radix-sorted when it spans a short time and
// comparison-sorted otherwise; either way deadline order, ties in arming order.
TEST(EventLoop, BurstsOfEveryTimeSpanFireInDeadlineThenArmingOrder) {
  for (Duration span : {Duration(0), Duration(1'000), Duration(1'000'000), Duration(10'000'000'000),
                        Duration(std::chrono::hours(24 * 30))}) {
    ManualClock clock;
    EventLoop loop(&clock);
    constexpr int kTimers = 5'000;
    std::mt19937_64 rng(static_cast<std::uint64_t>(span.count()));
    std::vector<std::pair<Duration::rep, int>> fired;
    for (int i = 0; i < kTimers; ++i) {
      // Every other timer on one of 64 deadlines, so that ties are common.
      Duration::rep at = span.count() == 0 ? 0 : static_cast<Duration::rep>(rng() % span.count());
      if (i % 2 == 0) at -= at % std::max<Duration::rep>(1, span.count() / 64);
      loop.CallAt(TimePoint(Duration(at)), [&fired, at, i] { fired.emplace_back(at, i); });
    }
    clock.Advance(span);
    loop.RunUntilIdle();
    ASSERT_EQ(fired.size(), static_cast<std::size_t>(kTimers)) << span.count();
    EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end())) << "span " << span.count() << " ns";
  }
}

// An awaiter's timer (a node it owns) as the heap sees it.
class RecordingNode final : public internal::TimerNode {
 public:
  RecordingNode(std::vector<std::pair<Duration::rep, int>>* fired, Duration::rep at, int index)
      : fired_(fired), at_(at), index_(index) {}
  void OnTimer() override { fired_->emplace_back(at_, index_); }

 private:
  std::vector<std::pair<Duration::rep, int>>* fired_;
  Duration::rep at_;
  int index_;
};

TEST(EventLoop, AwaitersAndCallbacksInOneBurstFireInDeadlineThenArmingOrder) {
  ManualClock clock;
  EventLoop loop(&clock);
  constexpr int kTimers = 6'000;
  std::mt19937 rng(7);
  std::vector<std::pair<Duration::rep, int>> fired;
  std::vector<std::unique_ptr<RecordingNode>> nodes(kTimers);
  std::vector<int> disarmed;
  for (int i = 0; i < kTimers; ++i) {
    Duration::rep at = static_cast<Duration::rep>(rng() % 1'000) * 1'000;  // ties are common
    if (i % 2 == 0) {
      nodes[i] = std::make_unique<RecordingNode>(&fired, at, i);
      loop.ArmTimer(nodes[i].get(), TimePoint(Duration(at)));
    } else {
      loop.CallAt(TimePoint(Duration(at)), [&, at, i] {
        fired.emplace_back(at, i);
        // Awaiters give up their timers while the burst fires (a wait that ended).
        if (i % 100 == 1 && i + 1 < kTimers && nodes[i + 1]->armed()) {
          loop.DisarmTimer(nodes[i + 1].get());
          disarmed.push_back(i + 1);
        }
      });
    }
  }
  clock.Advance(std::chrono::milliseconds(1));
  loop.RunUntilIdle();
  EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end()));
  EXPECT_EQ(fired.size() + disarmed.size(), static_cast<std::size_t>(kTimers));
  EXPECT_GT(disarmed.size(), 10u);  // most fell due after the callback that disarmed them
  for (int i : disarmed) {
    EXPECT_TRUE(std::none_of(fired.begin(), fired.end(), [i](const auto& f) { return f.second == i; })) << i;
  }
  for (const auto& node : nodes) {
    if (node != nullptr) {
      EXPECT_FALSE(node->armed());
    }
  }
  EXPECT_EQ(loop.pending_timers(), 0u);
}

TEST(EventLoop, CancelledTimersAreSweptAndDoNotMoveAnAutoAdvancingClock) {
  ManualClock clock(/*auto_advance=*/true);
  EventLoop loop(&clock);
  for (int i = 0; i < 100'000; ++i) {
    TimerId id = loop.CallLater(std::chrono::hours(1), [] { ADD_FAILURE() << "a cancelled timer fired"; });
    EXPECT_TRUE(loop.CancelTimer(id));
    EXPECT_FALSE(loop.CancelTimer(id));  // a stale id cancels nothing
  }
  EXPECT_EQ(loop.pending_timers(), 0u);
  bool fired = false;
  loop.CallLater(std::chrono::seconds(1), [&] { fired = true; });
  loop.RunUntil([&] { return fired; });
  EXPECT_EQ(clock.Now(), TimePoint(std::chrono::seconds(1)));  // not an hour
}

TEST(EventLoop, RealClockTimerWaitsAtLeastItsDelay) {
  EventLoop loop;
  TimePoint start = loop.Now();
  TimePoint fired_at;
  loop.CallLater(20ms, [&] {
    fired_at = loop.Now();
    loop.Stop();
  });
  loop.Run();
  EXPECT_GE(fired_at - start, 20ms);
}

TEST(EventLoop, PostsFromEightThreadsArriveExactlyOnceAndInOrderPerThread) {
  constexpr int kThreads = 8;
  constexpr int kPosts = 100'000;
  EventLoop loop;
  std::vector<int> next(kThreads, 0);
  bool in_order = true;
  int received = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPosts; ++i) {
        loop.Post([&, t, i] {
          loop.CheckInLoopThread();
          in_order = in_order && next[t] == i;
          next[t] = i + 1;
          ++received;
        });
      }
    });
  }
  loop.RunUntil([&] { return received == kThreads * kPosts; });
  for (std::thread& t : threads) t.join();
  loop.RunUntilIdle();
  EXPECT_EQ(received, kThreads * kPosts);
  EXPECT_TRUE(in_order);
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(next[t], kPosts);
}

TEST(EventLoop, PostsWaitingForRoomArriveInOrderOnceTheLoopRuns) {
  // Three rings' worth posted before the loop runs: the poster waits for room.
  constexpr int kPosts = 3 * static_cast<int>(EventLoop::kPostCapacity);
  EventLoop loop;
  int received = 0;
  bool in_order = true;
  std::thread poster([&] {
    for (int i = 0; i < kPosts; ++i) {
      loop.Post([&, i] {
        in_order = in_order && received == i;
        ++received;
      });
    }
  });
  loop.RunUntil([&] { return received == kPosts; });
  poster.join();
  EXPECT_TRUE(in_order);
}

// The teardown use-after-free that post accounting fixed: the post that ends the
// loop's run (and wakes it from its sleep) may be the last thing the loop runs before
// its owner destroys it; the posting thread must not touch the loop after that.
// TSan reports a race with the loop's delete if it does (checked by reading a loop
// member after the push), ASan a heap-use-after-free when the poster is preempted there.
TEST(EventLoop, ALoopDestroyedRightAfterTheLastPostRunsIsNotTouchedAgain) {
  for (int round = 0; round < 500; ++round) {
    auto loop = std::make_unique<EventLoop>();
    bool done = false;
    std::thread poster([&loop, &done, round] {
      // Some rounds post while the loop is still starting, most once it sleeps.
      for (int spin = 0; spin < round % 10; ++spin) std::this_thread::yield();
      loop->Post([&done] { done = true; });
    });
    loop->RunUntil([&] { return done; });
    loop.reset();
    poster.join();
  }
}

TEST(EventLoop, PostedCallsAreDestroyedOnceWhetherTheyRunOrNot) {
  auto token = std::make_shared<int>(0);
  struct Big {  // too large to live in the ring: boxed
    std::shared_ptr<int> token;
    char padding[64] = {};
    void operator()() const { ++*token; }
  };
  {
    EventLoop loop;
    std::thread poster([&] {
      loop.Post([token] { ++*token; });  // inline
      loop.Post(Big{token});
    });
    poster.join();
    loop.RunUntil([&] { return *token == 2; });
    EXPECT_EQ(token.use_count(), 1);
    std::thread never_run([&] {
      loop.Post([token] { ++*token; });
      loop.Post(Big{token});
    });
    never_run.join();
    EXPECT_EQ(token.use_count(), 3);
  }  // the loop never ran them: destroyed with it
  EXPECT_EQ(token.use_count(), 1);
  EXPECT_EQ(*token, 2);
}

TEST(EventLoop, StopFromAnotherThreadEndsRun) {
  EventLoop loop;
  std::atomic<bool> running{false};
  loop.CallSoon([&] { running = true; });
  std::thread stopper([&] {
    while (!running) std::this_thread::yield();
    loop.Stop();
  });
  loop.Run();  // returns only because of Stop()
  stopper.join();
  EXPECT_TRUE(running);
}

TEST(EventLoop, ReaderRunsWhenItsFdBecomesReadable) {
  EventLoop loop;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  int reads = 0;
  ASSERT_TRUE(loop.AddReader(fd, [&] {
                    std::uint64_t v;
                    ASSERT_EQ(read(fd, &v, sizeof(v)), static_cast<ssize_t>(sizeof(v)));
                    ++reads;
                  }).ok());
  EXPECT_EQ(loop.AddReader(fd, [] {}).code(), absl::StatusCode::kAlreadyExists);
  std::thread writer([fd] {
    std::uint64_t one = 1;
    ASSERT_EQ(write(fd, &one, sizeof(one)), static_cast<ssize_t>(sizeof(one)));
  });
  loop.RunUntil([&] { return reads == 1; });
  writer.join();
  EXPECT_TRUE(loop.RemoveReader(fd).ok());
  EXPECT_EQ(loop.RemoveReader(fd).code(), absl::StatusCode::kNotFound);
  close(fd);
}

TEST(EventLoop, ReaderMayRemoveItselfWhileRunning) {
  EventLoop loop;
  int fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  int calls = 0;
  ASSERT_TRUE(loop.AddReader(fd, [&] {
                    ++calls;
                    EXPECT_TRUE(loop.RemoveReader(fd).ok());  // destroys this callback's registration
                  }).ok());
  loop.RunUntil([&] { return calls == 1; });
  loop.RunUntilIdle();
  EXPECT_EQ(calls, 1);
  close(fd);
}

TEST(EventLoop, AnUnconsumedStopDoesNotDisturbRunUntil) {
  ManualClock clock(/*auto_advance=*/true);
  EventLoop loop(&clock);
  loop.Stop();  // nobody calls Run()
  bool fired = false;
  loop.CallLater(std::chrono::seconds(5), [&] { fired = true; });
  loop.RunUntil([&] { return fired; });
  EXPECT_EQ(clock.Now().time_since_epoch(), std::chrono::seconds(5));
}

TEST(EventLoopDeathTest, UseFromAForeignThreadAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        EventLoop loop;
        std::thread other([&] { loop.AddReader(0, [] {}).IgnoreError(); });
        other.join();
      },
      "does not own it");
}

}  // namespace
}  // namespace cohort::runtime
