#include "libs/common/label_cap.h"

#include <set>
#include <string>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

TEST(LabelCap, TheFirstLimitDistinctValuesKeepTheirNameAndTheRestShareOther) {
  LabelCap cap(2);
  EXPECT_EQ(cap.Label("a"), "a");
  EXPECT_EQ(cap.Label("b"), "b");
  EXPECT_EQ(cap.Label("a"), "a");  // seen: still within the first two
  EXPECT_EQ(cap.Label("c"), "_other");
  EXPECT_EQ(cap.Label("d"), "_other");
  EXPECT_EQ(cap.Label("b"), "b");
  EXPECT_TRUE(cap.IsOther("c"));
  EXPECT_FALSE(cap.IsOther("a"));
}

TEST(LabelCap, ThousandsOfValuesGiveAtMostLimitPlusOneLabels) {
  LabelCap cap(100);
  std::set<std::string> labels;
  for (int i = 0; i < 5000; ++i) labels.insert(cap.Label("q" + std::to_string(i)));
  EXPECT_EQ(labels.size(), 101u);
  EXPECT_TRUE(labels.contains("_other"));
  EXPECT_TRUE(labels.contains("q99"));
  EXPECT_FALSE(labels.contains("q100"));
}

TEST(LabelCap, ZeroMapsEveryValueToOther) {
  LabelCap cap(0);
  EXPECT_EQ(cap.Label("a"), "_other");
}

}  // namespace
}  // namespace cohort::common
