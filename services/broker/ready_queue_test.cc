#include "services/broker/ready_queue.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::broker {
namespace {

std::vector<std::string> PopAll(ReadyQueue& q) {
  std::vector<std::string> out;
  while (auto e = q.Pop()) out.push_back(e->job_id);
  return out;
}

TEST(ReadyQueue, HigherPriorityFirstAndFifoWithinAPriority) {
  ReadyQueue q(/*starvation_every=*/0);
  q.Push({0, 1, "low-1", "k"});
  q.Push({5, 2, "high-1", "k"});
  q.Push({0, 3, "low-2", "k"});
  q.Push({5, 4, "high-2", "k"});
  q.Push({-3, 5, "negative", "k"});
  EXPECT_EQ(PopAll(q), (std::vector<std::string>{"high-1", "high-2", "low-1", "low-2", "negative"}));
}

TEST(ReadyQueue, StarvationBoundServesTheOldestJobEveryNthPop) {
  ReadyQueue q(/*starvation_every=*/4);
  q.Push({0, 1, "old-low", "k"});
  for (int i = 0; i < 10; ++i) q.Push({9, 100 + i, "high-" + std::to_string(i), "k"});
  std::vector<std::string> order = PopAll(q);
  // Three high-priority jobs, then the oldest job whatever its priority.
  EXPECT_EQ(order[3], "old-low");
  EXPECT_EQ(order.size(), 11u);
}

TEST(ReadyQueue, StrictPriorityStarvesWhenTheBoundIsOff) {
  ReadyQueue q(/*starvation_every=*/0);
  q.Push({0, 1, "old-low", "k"});
  for (int i = 0; i < 10; ++i) q.Push({9, 100 + i, "high", "k"});
  EXPECT_EQ(PopAll(q).back(), "old-low");
}

TEST(ReadyQueue, RemoveDropsOneJobAndDepthCountsPerPriority) {
  ReadyQueue q(0);
  q.Push({1, 1, "a", "k"});
  q.Push({1, 2, "b", "k"});
  q.Push({2, 3, "c", "k"});
  EXPECT_TRUE(q.Remove(1, 1));
  EXPECT_FALSE(q.Remove(1, 1));
  EXPECT_EQ(q.DepthByPriority(), (std::vector<std::pair<std::int32_t, std::int64_t>>{{2, 1}, {1, 1}}));
  EXPECT_EQ(q.Oldest()->job_id, "b");
  EXPECT_EQ(PopAll(q), (std::vector<std::string>{"c", "b"}));
}

std::vector<std::string> PopAll(ReadyQueue& q, const KindSet& kinds) {
  std::vector<std::string> out;
  while (auto e = q.Pop(kinds)) out.push_back(e->job_id);
  return out;
}

TEST(ReadyQueue, PopForKindsTakesPriorityThenFifoAmongThoseKindsOnly) {
  ReadyQueue q(/*starvation_every=*/0);
  q.Push({0, 1, "a-low-1", "a"});
  q.Push({9, 2, "b-high", "b"});
  q.Push({5, 3, "c-mid", "c"});
  q.Push({0, 4, "a-low-2", "a"});
  q.Push({5, 5, "a-mid", "a"});
  EXPECT_EQ(PopAll(q, KindSet{"a", "c"}), (std::vector<std::string>{"c-mid", "a-mid", "a-low-1", "a-low-2"}));
  EXPECT_FALSE(q.HasFor(KindSet{"a", "c"}));
  EXPECT_TRUE(q.HasFor(KindSet{"b", "z"}));
  EXPECT_TRUE(q.HasFor(KindSet{}));  // every kind
  EXPECT_EQ(PopAll(q), (std::vector<std::string>{"b-high"}));
}

TEST(ReadyQueue, PopForAKindNobodyQueuedChangesNothing) {
  ReadyQueue q(/*starvation_every=*/2);
  q.Push({0, 1, "a", "a"});
  EXPECT_EQ(q.Pop(KindSet{"b"}), std::nullopt);
  EXPECT_EQ(q.size(), 1u);
  // The miss did not count towards the starvation bound: the next pop is a normal one.
  q.Push({9, 2, "a-high", "a"});
  EXPECT_EQ(q.Pop(KindSet{"a"})->job_id, "a-high");
}

TEST(ReadyQueue, StarvationBoundTakesTheOldestJobOfTheKindsServed) {
  ReadyQueue q(/*starvation_every=*/3);
  q.Push({0, 1, "other-oldest", "other"});
  q.Push({0, 2, "a-old-low", "a"});
  for (int i = 0; i < 5; ++i) q.Push({9, 100 + i, "a-high-" + std::to_string(i), "a"});
  std::vector<std::string> order = PopAll(q, KindSet{"a"});
  // Two high-priority jobs, then the oldest job among kind "a", never another kind's.
  ASSERT_EQ(order.size(), 6u);
  EXPECT_EQ(order[2], "a-old-low");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.Oldest()->job_id, "other-oldest");
}

TEST(ReadyQueue, DepthByKindFollowsPushPopAndRemove) {
  ReadyQueue q(0);
  q.Push({0, 1, "x1", "x"});
  q.Push({0, 2, "y1", "y"});
  q.Push({1, 3, "x2", "x"});
  EXPECT_EQ(q.DepthByKind(), (std::vector<std::pair<std::string, std::int64_t>>{{"x", 2}, {"y", 1}}));
  EXPECT_TRUE(q.Remove(0, 2));
  EXPECT_EQ(q.DepthByKind(), (std::vector<std::pair<std::string, std::int64_t>>{{"x", 2}}));
  EXPECT_FALSE(q.HasFor(KindSet{"y"}));
  EXPECT_EQ(q.Pop(KindSet{"x"})->job_id, "x2");
  EXPECT_EQ(q.Pop()->job_id, "x1");
  EXPECT_TRUE(q.DepthByKind().empty());
}

}  // namespace
}  // namespace cohort::broker
