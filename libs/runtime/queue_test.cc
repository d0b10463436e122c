#include "libs/runtime/queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "libs/runtime/runtime.h"
#include "libs/runtime/test_util.h"

namespace cohort::runtime {
namespace {

using namespace std::chrono_literals;
using QueueTest = testing::ManualLoopTest;

template <typename Q>
std::vector<int> Drain(Q& q) {
  std::vector<int> out;
  while (!q.Empty()) out.push_back(*q.GetNowait());
  return out;
}

TEST_F(QueueTest, QueueLifoQueueAndPriorityQueueReturnItemsInTheirOrder) {
  Queue<int> fifo;
  LifoQueue<int> lifo;
  PriorityQueue<int> prio;
  for (int v : {3, 1, 2}) {
    ASSERT_TRUE(fifo.PutNowait(v).ok());
    ASSERT_TRUE(lifo.PutNowait(v).ok());
    ASSERT_TRUE(prio.PutNowait(v).ok());
  }
  EXPECT_EQ(Drain(fifo), (std::vector<int>{3, 1, 2}));
  EXPECT_EQ(Drain(lifo), (std::vector<int>{2, 1, 3}));
  EXPECT_EQ(Drain(prio), (std::vector<int>{1, 2, 3}));
}

TEST_F(QueueTest, NowaitOperationsFailClearlyWhenFullOrEmpty) {
  Queue<int> q(1);
  EXPECT_EQ(q.GetNowait().status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(q.PutNowait(1).ok());
  absl::Status full = q.PutNowait(2);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(q.Size(), 1u);
  EXPECT_EQ(*q.GetNowait(), 1);
}

TEST_F(QueueTest, GetWaitsForAPut) {
  Run([this]() -> Task<void> {
    Queue<std::string> q;
    auto producer = [](Queue<std::string>* q) -> Task<void> {
      co_await Sleep(10ms);
      co_await q->Put("hello");
    };
    TaskHandle<void> p = Spawn(producer(&q));
    {
      auto got = co_await q.Get();
      EXPECT_EQ(got, "hello");
    }
    EXPECT_EQ(ElapsedMs(), 10);
    co_await p;
  }());
}

TEST_F(QueueTest, BoundedPutAppliesBackPressure) {
  Run([this]() -> Task<void> {
    Queue<int> q(2);
    std::size_t largest = 0;
    auto producer = [](Queue<int>* q, std::size_t* largest) -> Task<void> {
      for (int i = 0; i < 6; ++i) {
        co_await q->Put(i);
        *largest = std::max(*largest, q->Size());
      }
    };
    TaskHandle<void> p = Spawn(producer(&q, &largest));
    std::vector<int> got;
    for (int i = 0; i < 6; ++i) {
      co_await Sleep(1ms);  // a slow consumer
      got.push_back(co_await q.Get());
    }
    co_await p;
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5}));
    EXPECT_EQ(largest, 2u);  // never more than maxsize
    EXPECT_EQ(ElapsedMs(), 6);
  }());
}

TEST_F(QueueTest, CancelledGetterLosesNoItem) {
  Run([]() -> Task<void> {
    Queue<int> q;
    auto getter = [](Queue<int>* q) -> Task<int> { co_return co_await q->Get(); };
    TaskHandle<int> first = Spawn(getter(&q));
    TaskHandle<int> second = Spawn(getter(&q));
    co_await Yield();
    first.Cancel();  // raised at Get
    EXPECT_THROW(co_await first, CancelledError);
    EXPECT_TRUE(q.PutNowait(42).ok());
    {
      auto got = co_await second;
      EXPECT_EQ(got, 42);
    }
    EXPECT_TRUE(q.Empty());
  }());
}

TEST_F(QueueTest, CancelledPutterAddsNothing) {
  Run([]() -> Task<void> {
    Queue<int> q(1);
    EXPECT_TRUE(q.PutNowait(1).ok());
    auto putter = [](Queue<int>* q, int v) -> Task<void> { co_await q->Put(v); };
    TaskHandle<void> blocked = Spawn(putter(&q, 2));
    co_await Yield();
    blocked.Cancel();
    EXPECT_THROW(co_await blocked, CancelledError);
    {
      auto got = co_await q.Get();
      EXPECT_EQ(got, 1);
    }
    EXPECT_TRUE(q.Empty());
  }());
}

TEST_F(QueueTest, JoinWaitsUntilEveryItemIsMarkedDone) {
  Run([this]() -> Task<void> {
    Queue<int> q;
    for (int i = 0; i < 3; ++i) co_await q.Put(i);
    auto worker = [](Queue<int>* q) -> Task<void> {
      while (true) {
        co_await q->Get();
        co_await Sleep(10ms);
        EXPECT_TRUE(q->TaskDone().ok());
      }
    };
    TaskHandle<void> w = Spawn(worker(&q));
    co_await q.Join();
    EXPECT_EQ(ElapsedMs(), 30);
    w.Cancel();
    EXPECT_THROW(co_await w, CancelledError);
    EXPECT_EQ(q.TaskDone().code(), absl::StatusCode::kFailedPrecondition);
  }());
}

}  // namespace
}  // namespace cohort::runtime
