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
  q.Push({0, 1, "low-1"});
  q.Push({5, 2, "high-1"});
  q.Push({0, 3, "low-2"});
  q.Push({5, 4, "high-2"});
  q.Push({-3, 5, "negative"});
  EXPECT_EQ(PopAll(q), (std::vector<std::string>{"high-1", "high-2", "low-1", "low-2", "negative"}));
}

TEST(ReadyQueue, StarvationBoundServesTheOldestJobEveryNthPop) {
  ReadyQueue q(/*starvation_every=*/4);
  q.Push({0, 1, "old-low"});
  for (int i = 0; i < 10; ++i) q.Push({9, 100 + i, "high-" + std::to_string(i)});
  std::vector<std::string> order = PopAll(q);
  // Three high-priority jobs, then the oldest job whatever its priority.
  EXPECT_EQ(order[3], "old-low");
  EXPECT_EQ(order.size(), 11u);
}

TEST(ReadyQueue, StrictPriorityStarvesWhenTheBoundIsOff) {
  ReadyQueue q(/*starvation_every=*/0);
  q.Push({0, 1, "old-low"});
  for (int i = 0; i < 10; ++i) q.Push({9, 100 + i, "high"});
  EXPECT_EQ(PopAll(q).back(), "old-low");
}

TEST(ReadyQueue, RemoveDropsOneJobAndDepthCountsPerPriority) {
  ReadyQueue q(0);
  q.Push({1, 1, "a"});
  q.Push({1, 2, "b"});
  q.Push({2, 3, "c"});
  EXPECT_TRUE(q.Remove(1, 1));
  EXPECT_FALSE(q.Remove(1, 1));
  EXPECT_EQ(q.DepthByPriority(), (std::vector<std::pair<std::int32_t, std::int64_t>>{{2, 1}, {1, 1}}));
  EXPECT_EQ(q.Oldest()->job_id, "b");
  EXPECT_EQ(PopAll(q), (std::vector<std::string>{"c", "b"}));
}

}  // namespace
}  // namespace cohort::broker
