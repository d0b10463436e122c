#include "libs/runtime/thread_pool.h"

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"

namespace cohort::runtime {
namespace {

TEST(ToThread, RunsOffTheLoopAndResumesOnIt) {
  EventLoop loop;
  ThreadPool pool(2);
  const std::thread::id loop_thread = std::this_thread::get_id();
  RunUntilComplete(loop, [](ThreadPool* pool, std::thread::id loop_thread) -> Task<void> {
    std::thread::id worker = co_await ToThread(*pool, [] { return std::this_thread::get_id(); });
    EXPECT_NE(worker, loop_thread);
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
  }(&pool, loop_thread));
}

TEST(ToThread, PropagatesTheException) {
  EventLoop loop;
  ThreadPool pool(1);
  auto body = [](ThreadPool* pool) -> Task<void> {
    co_await ToThread(*pool, []() -> int { throw std::runtime_error("disk on fire"); });
  };
  try {
    RunUntilComplete(loop, body(&pool));
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
  }
}

TEST(ToThread, ManyConcurrentCallsAllComplete) {
  EventLoop loop;
  ThreadPool pool(4);
  auto one = [](ThreadPool* pool, int i) -> Task<int> { co_return co_await ToThread(*pool, [i] { return i * 2; }); };
  std::vector<Task<int>> tasks;
  for (int i = 0; i < 1000; ++i) tasks.push_back(one(&pool, i));
  std::vector<int> results = RunUntilComplete(loop, Gather(std::move(tasks)));
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(results[i], i * 2);
}

TEST(ToThread, CancellationWaitsForTheFunctionThenRaisesAtTheNextSuspension) {
  EventLoop loop;
  ThreadPool pool(1);
  std::atomic<bool> release{false};
  std::atomic<bool> finished{false};
  RunUntilComplete(loop, [](ThreadPool* pool, std::atomic<bool>* release, std::atomic<bool>* finished) -> Task<void> {
    auto blocking = [](ThreadPool* pool, std::atomic<bool>* release, std::atomic<bool>* finished) -> Task<int> {
      int v = co_await ToThread(*pool, [release, finished] {
        while (!*release) std::this_thread::yield();
        *finished = true;
        return 5;
      });
      EXPECT_EQ(v, 5);  // the result arrives despite the cancel
      co_await Yield();  // the pending cancellation is raised here
      co_return v;
    };
    TaskHandle<int> h = Spawn(blocking(pool, release, finished));
    co_await Yield();
    co_await Yield();
    h.Cancel();
    *release = true;
    EXPECT_THROW(co_await h, CancelledError);
    EXPECT_TRUE(*finished);
  }(&pool, &release, &finished));
}

TEST(ThreadPool, DestructionFinishesSubmittedWork) {
  std::atomic<int> done{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 100; ++i) pool.Submit([&] { ++done; });
  }
  EXPECT_EQ(done.load(), 100);
}

}  // namespace
}  // namespace cohort::runtime
